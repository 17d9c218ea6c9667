"""Qualification fields as the lead stated them: budget (against the deal size), timeline, need."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.spec import FeatureSpec

SPECS = [
    FeatureSpec("stated_budget", "numeric", "qualification", "stated_budget", "Stated budget"),
    FeatureSpec("budget_to_deal_size", "numeric", "qualification", "stated_budget",
                "Stated budget relative to deal size"),
    FeatureSpec("purchase_timeline", "categorical", "qualification", "purchase_timeline", "Purchase timeline"),
    FeatureSpec("stated_need", "categorical", "qualification", "stated_need", "Stated need"),
]


def qualification_features(deals: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    rows = leads.set_index("lead_id").reindex(deals["lead_id"].to_numpy())
    budget = rows["stated_budget"].to_numpy(dtype=float)
    amount = deals["amount"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(amount > 0, budget / amount, np.nan)
    return pd.DataFrame({
        "stated_budget": budget,
        "budget_to_deal_size": ratio,
        "purchase_timeline": rows["purchase_timeline"].to_numpy(dtype=object),
        "stated_need": rows["stated_need"].to_numpy(dtype=object),
    }, index=deals.index)
