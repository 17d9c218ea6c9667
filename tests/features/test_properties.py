"""Property tests (hypothesis): framework rules on random values and missing columns give a status per
record, never an exception."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.features.qualification import evaluate_framework, load_framework
from tests.strategies import CELLS, FAST

FIELDS = ["budget_ratio", "seniority", "stated_need", "purchase_timeline", "icp_fit", "employees"]


@FAST
@given(st.data())
def test_framework_rules_on_random_values_and_missing_columns(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 12))
    present = data.draw(st.lists(st.sampled_from(FIELDS), unique=True))
    context = pd.DataFrame({f: data.draw(st.lists(st.one_of(st.none(), CELLS, st.floats()), min_size=n, max_size=n))
                            for f in present}, index=pd.RangeIndex(n))
    for name in ("bant", "champ", "meddic"):
        flags = evaluate_framework(context, load_framework(name))
        assert len(flags) == n
        statuses = flags[[c for c in flags.columns if c.startswith("fw_") and not c.endswith("_reason")]]
        assert set(np.unique(statuses.to_numpy().astype(str))) <= {"met", "not_met", "unknown"}
