"""Qualification rules on hand-built leads: every operator, any/all, and missing data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError
from pipeline.features.qualification import (
    Condition,
    Criterion,
    Framework,
    evaluate_condition,
    evaluate_framework,
    load_framework,
    status_shares,
)

LEADS = pd.DataFrame({
    "budget_ratio": [1.2, 0.5, np.nan, 0.8],
    "seniority": ["vp", "ic", None, "Director "],
    "need": ["high", "low", None, "medium"],
    "title": ["VP of Sales", "Intern", None, "Director, IT"],
    "demos": [2.0, 0.0, np.nan, 1.0],
})


def _cond(field: str, op: str, value: object = None) -> list[object]:
    result = evaluate_condition(Condition.model_validate({"field": field, "op": op, "value": value}), LEADS[field])
    return [None if pd.isna(v) else bool(v) for v in result]


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("budget_ratio", ">=", 0.8, [True, False, None, True]),
    ("budget_ratio", ">", 0.8, [True, False, None, False]),
    ("budget_ratio", "<", 0.8, [False, True, None, False]),
    ("budget_ratio", "<=", 0.5, [False, True, None, False]),
    ("budget_ratio", "between", [0.5, 1.0], [False, True, None, True]),
    ("demos", "==", 2, [True, False, None, False]),
    ("demos", "!=", 0, [True, False, None, True]),
    ("need", "==", "HIGH", [True, False, None, False]),
    ("need", "!=", "high", [False, True, None, True]),
    ("seniority", "in", ["VP", "director"], [True, False, None, True]),
    ("seniority", "not_in", ["ic"], [True, False, None, True]),
    ("title", "contains", "sales", [True, False, None, False]),
    ("need", "present", None, [True, True, False, True]),
])
def test_every_operator(field: str, op: str, value: object, expected: list[object]) -> None:
    assert _cond(field, op, value) == expected


def test_a_field_the_export_lacks_is_unknown_not_an_error() -> None:
    fw = Framework(name="T", criteria=[Criterion(key="metrics", label="Metrics",
                                                 conditions=[Condition(field="no_such_field", op=">", value=1)])])
    out = evaluate_framework(LEADS, fw)
    assert set(out["fw_metrics"]) == {"unknown"}
    assert out["fw_metrics_reason"].iloc[0] == "The export has no no such field"


def test_all_needs_every_condition_and_any_needs_one() -> None:
    conditions = [Condition(field="budget_ratio", op=">=", value=0.8),
                  Condition(field="seniority", op="in", value=["vp", "director"])]
    fw = Framework(name="T", criteria=[
        Criterion(key="both", label="Both", match="all", conditions=conditions),
        Criterion(key="either", label="Either", match="any", conditions=conditions),
    ])
    out = evaluate_framework(LEADS, fw)
    assert out["fw_both"].tolist() == ["met", "not_met", "unknown", "met"]
    assert out["fw_either"].tolist() == ["met", "not_met", "unknown", "met"]
    # One condition known and false, the other missing: all -> not_met; any -> unknown.
    partial = pd.DataFrame({"budget_ratio": [0.1], "seniority": [None]})
    flags = evaluate_framework(partial, fw)
    assert flags[["fw_both", "fw_either"]].iloc[0].tolist() == ["not_met", "unknown"]
    # One known and true, the other missing: all -> unknown; any -> met.
    partial = pd.DataFrame({"budget_ratio": [2.0], "seniority": [None]})
    assert evaluate_framework(partial, fw)[["fw_both", "fw_either"]].iloc[0].tolist() == ["unknown", "met"]


def test_reasons_quote_the_actual_values_and_points_count_criteria_met() -> None:
    bant = load_framework("bant")
    context = pd.DataFrame({"budget_to_deal_size": [1.25], "seniority": ["vp"], "stated_need": ["low"],
                            "purchase_timeline": [None]})
    out = evaluate_framework(context, bant, labels={"budget_to_deal_size": "stated budget relative to deal size",
                                                    "seniority": "contact seniority"},
                             display={"stated_need": {"low": "Low", "high": "High"},
                                      "seniority": {"vp": "VP", "c_level": "C-level", "director": "Director"}})
    row = out.iloc[0]
    # The line says the value and what it needs; the criterion and its status are columns of their own.
    assert row["fw_budget_reason"] == "Stated budget relative to deal size is 1.25 (needs at least 0.8)"
    assert row["fw_need_reason"] == "Stated need is Low (needs one of High or medium)"
    assert row["fw_authority_reason"] == "Contact seniority is VP (needs one of C-level, VP or Director)"
    assert row["fw_timeline_reason"] == "Purchase timeline is missing"
    assert row["framework_points"] == 2
    shares = status_shares(out, bant)
    assert shares["timeline"] == {"met": 0.0, "not_met": 0.0, "unknown": 1.0}


@pytest.mark.parametrize(("name", "keys"), [
    ("bant", ["budget", "authority", "need", "timeline"]),
    ("champ", ["challenges", "authority", "money", "prioritization"]),
    ("anum", ["authority", "need", "urgency", "money"]),
    ("faint", ["funds", "authority", "interest", "need", "timing"]),
    ("meddic", ["metrics", "economic_buyer", "decision_criteria", "decision_process", "identify_pain", "champion"]),
])
def test_every_shipped_framework_loads(name: str, keys: list[str]) -> None:
    assert [c.key for c in load_framework(name).criteria] == keys


def test_a_bad_rule_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: Mine\ncriteria:\n  - key: budget\n    label: B\n    conditions:\n"
                   "      - {field: x, op: '=~', value: 1}\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: invalid framework: criteria\.0\.conditions\.0\.op"):
        load_framework(str(bad))
    with pytest.raises(ConfigError, match="neither a shipped framework"):
        load_framework("spiced")


def test_rules_are_data_not_code() -> None:
    with pytest.raises(ValueError, match="needs a number"):
        Condition(field="x", op=">", value="__import__('os').system('true')")
