"""Property tests (hypothesis): scoring's quarantine keeps rows in = rows scored + quarantined."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import CELLS, FAST


@FAST
@given(st.lists(st.one_of(st.none(), CELLS), min_size=1, max_size=30), st.lists(CELLS, min_size=1, max_size=30))
def test_scoring_quarantine_keeps_the_row_count(ids: list[str | None], numbers: list[str]) -> None:
    from pipeline.contracts.features import FeatureSpec
    from pipeline.scoring.scorer import quarantine_rows

    n = min(len(ids), len(numbers))
    chunk = pd.DataFrame({"record_id": ids[:n], "employees": numbers[:n]}, dtype=object)
    spec = FeatureSpec("employees", "numeric", "firmographic", "employees", "x")
    good, bad = quarantine_rows(chunk, [spec])
    assert len(good) + len(bad) == n
    assert bad["row"].between(1, n).all() and bad["reason"].str.len().gt(0).all()
