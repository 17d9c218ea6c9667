"""Reasons a rep reads: contributions grouped by the field a rep knows, worded with the actual value."""

import numpy as np
import pandas as pd
import pytest

from pipeline.contracts.features import FeatureSpec
from pipeline.explain.reasons import reasons


def test_reasons_group_derived_columns_under_the_field_a_rep_knows() -> None:
    specs = [FeatureSpec("evt_pricing_page_view_7d", "numeric", "intent", "pricing_page_view", "Pricing 7d"),
             FeatureSpec("evt_pricing_page_view_30d", "numeric", "intent", "pricing_page_view", "Pricing 30d"),
             FeatureSpec("seniority", "categorical", "contact", "job_title", "Contact seniority"),
             FeatureSpec("employees", "numeric", "firmographic", "employees", "Company size (employees)")]
    x = pd.DataFrame({"evt_pricing_page_view_7d": [4.0], "evt_pricing_page_view_30d": [6.0],
                      "seniority": pd.Categorical(["vp"]), "employees": [12.0]})
    phi = np.array([[0.30, 0.15, 0.20, -0.40]])
    reasons_for, against = reasons(x, phi, specs, k=3, min_contribution=0.05)
    assert [r["text"] for r in reasons_for[0]] == ["Pricing page views: 4 in the last 7 days",
                                                   "VP-level (decision maker) contact"]
    assert reasons_for[0][0]["contribution"] == pytest.approx(0.45)
    assert [r["text"] for r in against[0]] == ["Company has 12 employees"]
    # Below the threshold: left out.
    assert reasons(x, phi * 0.1, specs, k=3, min_contribution=0.05)[0] == [[]]
