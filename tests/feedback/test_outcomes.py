"""Who was right: feedback planted on open leads that close in a later export, the figures computed
here independently (counts by hand, the Wilson interval from its formula with scipy's normal quantile)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from pipeline.feedback import FeedbackStore, feedback_notes, who_was_right
from pipeline.feedback.outcomes import headline

EXPORT_1 = datetime(2026, 1, 1, tzinfo=UTC)      # the leads are open: reps give feedback after this
CLOSE = datetime(2026, 2, 1, tzinfo=UTC)         # they close from here on (in the later export)
REFERENCE = {"sales_ready": (10, 20), "nurture": (4, 20), "disqualify": (1, 20)}  # won, deals on the holdout


def wilson(won: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = won / n
    denominator = 1 + z ** 2 / n
    centre = p + z ** 2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    return (centre - spread) / denominator, (centre + spread) / denominator


def reference() -> pd.DataFrame:
    rows = [{"next_step": step, "grade": "B", "won": i < won} for step, (won, n) in REFERENCE.items()
            for i in range(n)]
    return pd.DataFrame(rows)


def _plant(store: FeedbackStore, clock) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Feedback on leads open at the first export; the later export's outcomes. Returns the outcomes and
    what the report must say, counted by hand."""
    outcomes: list[dict[str, Any]] = []

    def close(record_id: str, won: bool, day: int = 0) -> None:
        outcomes.append({"record_id": record_id, "outcome": "won" if won else "lost",
                         "as_of": (CLOSE + timedelta(days=day)).strftime("%Y-%m-%d")})

    def verdict(record_id: str, kind: str, *, score: int, grade: str, step: str, day: int) -> None:
        clock.at = EXPORT_1 + timedelta(days=day, hours=10)
        reason = "strong fit" if kind == "agree" else "not a fit"
        store.add_verdict(record_id, author="ana", verdict=kind, reason=reason,
                          score=score, grade=grade, next_step=step, model_version="lgbm-1")

    # 20 agreements on A-graded, sales-ready leads scored 80: 14 won.
    for i in range(20):
        verdict(f"A{i:02d}", "agree", score=80, grade="A", step="sales_ready", day=i % 10)
        close(f"A{i:02d}", won=i < 14, day=i)
    # 15 disagreements on A leads scored 80 (5 won) and 5 on D leads scored 10 (3 won).
    for i in range(15):
        verdict(f"X{i:02d}", "disagree", score=80, grade="A", step="sales_ready", day=3)
        close(f"X{i:02d}", won=i < 5)
    for i in range(5):
        verdict(f"Y{i:02d}", "disagree", score=10, grade="D", step="nurture", day=4)
        close(f"Y{i:02d}", won=i < 3)
    # A rep agreed, then changed their mind: the latest verdict before the close counts (a disagreement).
    verdict("X15", "agree", score=80, grade="A", step="sales_ready", day=1)
    verdict("X15", "disagree", score=80, grade="A", step="sales_ready", day=2)
    close("X15", won=False)
    # ... and a verdict given after its lead closed does not count; the earlier one does (agree, lost).
    verdict("A20", "agree", score=80, grade="A", step="sales_ready", day=1)
    verdict("A20", "disagree", score=80, grade="A", step="sales_ready", day=60)
    close("A20", won=False, day=0)
    # Still open in the later export, and closed but with a verdict only after: neither counts.
    verdict("OPEN1", "disagree", score=50, grade="B", step="nurture", day=5)
    outcomes.append({"record_id": "OPEN1", "outcome": "open", "as_of": "2026-03-01"})
    verdict("LATE1", "agree", score=50, grade="B", step="nurture", day=90)
    close("LATE1", won=True)
    # Overrides: 12 raised from nurture to sales ready (8 won), 11 lowered from sales ready to
    # disqualify (2 won), one raised after its lead closed (not counted), one on an open lead.
    for i in range(12):
        clock.at = EXPORT_1 + timedelta(days=2)
        store.set_override(f"R{i:02d}", author="ana", next_step="sales_ready", model_next_step="nurture",
                           model_grade="C")
        close(f"R{i:02d}", won=i < 8)
    for i in range(11):
        clock.at = EXPORT_1 + timedelta(days=2)
        store.set_override(f"L{i:02d}", author="ana", next_step="disqualify", model_next_step="sales_ready",
                           model_grade="B")
        close(f"L{i:02d}", won=i < 2)
    clock.at = CLOSE + timedelta(days=40)
    store.set_override("R99", author="ana", next_step="sales_ready", model_next_step="nurture", model_grade="C")
    close("R99", won=True)
    store.set_override("OPEN2", author="ana", grade="A", model_next_step="nurture", model_grade="C")
    # Lead records of the later export that reps never touched.
    for i in range(30):
        close(f"N{i:02d}", won=i % 3 == 0)
    expected = {
        "agree": (14, 21, 0.80),                 # A00-A19 and A20 (its agree before close): won, leads, forecast
        "disagree": (5 + 3, 15 + 5 + 1, (16 * 80 + 5 * 10) / 21 / 100),
        "by_grade_A_disagree": (5, 16), "by_grade_D_disagree": (3, 5),
        "raised": (8, 12), "lowered": (2, 11),
        "closed_verdicts": 42, "closed_overrides": 23,
    }
    return pd.DataFrame(outcomes), expected


def test_who_was_right_on_planted_feedback_that_later_closes(store: FeedbackStore, clock) -> None:
    outcomes, want = _plant(store, clock)
    report = who_was_right(outcomes, store.frames(), reference=reference(), min_leads=10, confidence=0.95)
    assert report["status"] == "ok"
    verdicts, overrides = report["verdicts"], report["overrides"]
    assert verdicts["closed"] == want["closed_verdicts"] and overrides["closed"] == want["closed_overrides"]
    assert report["closed_leads"] == want["closed_verdicts"] + want["closed_overrides"]
    for kind in ("agree", "disagree"):
        won, n, forecast = want[kind]
        low, high = wilson(won, n)
        group = verdicts[kind]
        assert (group["leads"], group["won"]) == (n, won)
        assert group["win_rate"] == pytest.approx(won / n, abs=1e-4)
        assert (group["ci_low"], group["ci_high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
        assert group["model_expected_win_rate"] == pytest.approx(forecast, abs=1e-4)
        assert group["judged"] == ("model" if low <= forecast <= high else "rep")
    assert verdicts["agree"]["judged"] == "model"      # 67 % won against a forecast of 80 %: inside 45-83 %
    assert verdicts["disagree"]["judged"] == "rep"     # 38 % won against 64 %: the reps were right to doubt
    assert (verdicts["by_grade"]["A"]["disagree"]["won"], verdicts["by_grade"]["A"]["disagree"]["leads"]) == (
        want["by_grade_A_disagree"])
    small = verdicts["by_grade"]["D"]["disagree"]
    assert (small["won"], small["leads"], small["judged"]) == (*want["by_grade_D_disagree"], "too few to tell")
    assert verdicts["by_next_step"]["nurture"]["disagree"]["leads"] == 5
    assert overrides["model_win_rates"]["next_step"]["sales_ready"]["win_rate"] == 0.5
    for kind, model_step, rep_step in (("raised", "nurture", "sales_ready"), ("lowered", "sales_ready", "disqualify")):
        won, n = want[kind]
        group = overrides[kind]
        low, high = wilson(won, n)
        assert (group["leads"], group["won"]) == (n, won)
        assert (group["ci_low"], group["ci_high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
        model_rate = REFERENCE[model_step][0] / REFERENCE[model_step][1]
        rep_rate = REFERENCE[rep_step][0] / REFERENCE[rep_step][1]
        assert (group["model_value_win_rate"], group["rep_value_win_rate"]) == (model_rate, rep_rate)
        closer = "rep" if abs(won / n - rep_rate) < abs(won / n - model_rate) else "model"
        assert group["judged"] == closer
    # raised: 67 % won, nearer sales ready's 50 % than nurture's 20 %; lowered: 18 %, nearer disqualify's 5 %
    # than sales ready's 50 %: the reps were right both ways.
    assert overrides["raised"]["judged"] == overrides["lowered"]["judged"] == "rep"
    notes = feedback_notes(report)
    assert any(n.startswith("Leads reps disagreed with the score won 38% (8 of 21") for n in notes), notes
    assert any("Leads reps raised won 67% (8 of 12" in n and "the reps were right more often" in n for n in notes)
    assert headline(report) == {"fb_closed": 65, "fb_disagree_win": round(8 / 21, 4)}


def test_too_few_closed_leads_say_so_and_judge_nothing(store: FeedbackStore, clock) -> None:
    outcomes, _ = _plant(store, clock)
    report = who_was_right(outcomes, store.frames(), reference=reference(), min_leads=50)
    for group in (report["verdicts"]["agree"], report["verdicts"]["disagree"], report["overrides"]["raised"]):
        assert group["judged"] == "too few to tell" and not group["enough"]
    notes = feedback_notes(report)
    assert all("too few to tell (at least 50 needed)" in n for n in notes), notes
    assert headline(report)["fb_disagree_win"] is None


def test_no_feedback_says_so_plainly_with_no_figures(store: FeedbackStore) -> None:
    outcomes = pd.DataFrame({"record_id": ["D1"], "outcome": ["won"], "as_of": ["2026-02-01"]})
    for feedback in (None, store.frames()):
        report = who_was_right(outcomes, feedback)
        assert report["status"] == "no_feedback" and "verdicts" not in report
        assert feedback_notes(report) == ["No rep feedback yet: who was right, the model or the reps, is reported "
                                          "once leads with verdicts or overrides close."]
        assert headline(report) == {}


def test_feedback_on_leads_not_closed_yet_is_waiting(store: FeedbackStore) -> None:
    store.add_verdict("D1", author="ana", verdict="agree", reason="right timing", score=70, grade="B",
                      next_step="sales_ready", model_version="m")
    outcomes = pd.DataFrame({"record_id": ["D1", "D2"], "outcome": ["open", "won"], "as_of": ["2026-03-01"] * 2})
    report = who_was_right(outcomes, store.frames(), reference=reference())
    assert report["status"] == "none_closed" and report["verdicts"]["agree"]["leads"] == 0
    assert feedback_notes(report) == ["Reps gave feedback on 1 lead(s); none has closed since, so who was right "
                                      "cannot be told yet."]


def test_the_wilson_interval_matches_its_formula() -> None:
    from pipeline.feedback.outcomes import wilson_interval

    for won, n in ((0, 5), (5, 5), (3, 10), (40, 97)):
        low, high = wilson_interval(won, n, confidence=0.9)
        want_low, want_high = wilson(won, n, 0.9)
        assert (low, high) == (pytest.approx(max(0, want_low)), pytest.approx(min(1, want_high)))
    assert wilson_interval(0, 0, confidence=0.95) == (None, None)
    assert np.isclose(norm.ppf(0.975), 1.959964, atol=1e-6)
