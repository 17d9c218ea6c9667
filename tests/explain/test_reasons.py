"""Reasons a rep reads: contributions grouped by the field a rep knows, worded with the actual value."""

import numpy as np
import pandas as pd
import pytest

from pipeline.contracts.features import FeatureSpec
from pipeline.explain.reasons import default_templates, load_activity_nouns, reasons, word


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
                                                   "VP-level contact"]
    assert reasons_for[0][0]["contribution"] == pytest.approx(0.45)
    assert [r["text"] for r in against[0]] == ["Company has 12 employees"]
    # Below the threshold: left out.
    assert reasons(x, phi * 0.1, specs, k=3, min_contribution=0.05)[0] == [[]]


def test_days_read_today_yesterday_or_n_days_ago() -> None:
    spec = FeatureSpec("evt_demo_request_days_since", "numeric", "intent", "demo_request", "Days since the last demo")
    words = [word(spec, days, group="Demo requests", templates=default_templates()) for days in (0.0, 1.0, 3.0, 9999.0)]
    assert words == ["Last demo request: today", "Last demo request: yesterday", "Last demo request: 3 days ago",
                     "No demo request yet"]


def test_crm_values_show_as_the_crm_spells_them_and_codes_in_words() -> None:
    country = FeatureSpec("country", "categorical", "firmographic", "country", "Country", levels={"brazil": "Brazil"})
    account = FeatureSpec("account", "categorical", "firmographic", "account", "Account",
                          levels={"donquadtech": "DonQuadTech"})
    region = FeatureSpec("region", "categorical", "firmographic", "country", "Region", levels={"NA": "North America"})
    templates = default_templates()
    assert word(country, "brazil", group="Country", templates=templates) == "Based in Brazil"
    assert word(account, "donquadtech", group="Account", templates=templates) == "Account: DonQuadTech"
    assert word(region, "NA", group="Region", templates=templates) == "Sales region: North America"
    seniority = FeatureSpec("seniority", "categorical", "contact", "job_title", "Contact seniority")
    assert word(seniority, "ic", group="Job title", templates=templates) == "Individual-contributor contact"
    assert FeatureSpec("x", "categorical", "contact", "x", "X").shown("c_level") == "c level"  # never an identifier


def test_an_unknown_value_is_never_a_reason_for_but_may_be_one_against() -> None:
    specs = [FeatureSpec("fw_timeline", "categorical", "qualification", "timeline", "BANT: Timeline"),
             FeatureSpec("amount", "numeric", "deal", "amount", "Deal size"),
             FeatureSpec("stated_need", "categorical", "qualification", "stated_need", "Stated need",
                         levels={"high": "High"})]
    x = pd.DataFrame({"fw_timeline": pd.Categorical(["unknown", "unknown"], categories=["met", "not_met", "unknown"]),
                      "amount": [np.nan, np.nan], "stated_need": pd.Categorical(["high", "high"])})
    phi = np.array([[0.9, 0.5, 0.2], [-0.9, -0.5, 0.2]])
    reasons_for, against = reasons(x, phi, specs, k=3, min_contribution=0.05)
    assert [r["text"] for r in reasons_for[0]] == ["Stated need: High"]  # the unknowns left out, the rest kept
    assert [r["text"] for r in against[1]] == ["BANT: Timeline not known yet", "Deal size: not known"]


def test_the_shipped_templates_hold_no_parentheses_and_name_every_activity() -> None:
    # a change reason quotes a reason in parentheses of its own: none may nest
    assert not [t.match for t in default_templates() if "(" in t.text or "(" in (t.never or "")
                or any("(" in v for v in t.values.values())]
    nouns = load_activity_nouns()
    assert nouns["demo_request"] == ("demo request", "demo requests")
