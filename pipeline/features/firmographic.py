"""Firmographic features: company size, revenue, industry, country, age, subsidiary."""

from __future__ import annotations

import pandas as pd

from pipeline.features.spec import FeatureSpec

SPECS = [
    FeatureSpec("employees", "numeric", "firmographic", "employees", "Company size (employees)"),
    FeatureSpec("annual_revenue", "numeric", "firmographic", "annual_revenue", "Annual revenue"),
    FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
    FeatureSpec("country", "categorical", "firmographic", "country", "Country"),
    FeatureSpec("company_age_years", "numeric", "firmographic", "founded_year", "Company age (years)"),
    FeatureSpec("is_subsidiary", "numeric", "firmographic", "parent_company", "Part of a larger group"),
]


def firmographic_features(deals: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """One row per deal (aligned with ``deals``), from the deal's account as of ``deals.as_of``."""
    acc = accounts.set_index("account_id")
    rows = acc.reindex(deals["account_id"].to_numpy())
    return pd.DataFrame({
        "employees": rows["employees"].to_numpy(dtype=float),
        "annual_revenue": rows["annual_revenue"].to_numpy(dtype=float),
        "industry": rows["industry"].to_numpy(dtype=object),
        "country": rows["country"].to_numpy(dtype=object),
        "company_age_years": deals["as_of"].dt.year.to_numpy(dtype=float) - rows["founded_year"].to_numpy(dtype=float),
        "is_subsidiary": rows["parent_company"].notna().to_numpy(dtype=float),
    }, index=deals.index)
