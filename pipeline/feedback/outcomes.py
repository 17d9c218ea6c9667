"""Who was right, the model or the reps, once leads with feedback close: a pure function of the closed
outcomes of a later export (``record_id``, ``outcome`` won/lost, ``as_of``: the close date) and the
feedback given *before* each lead closed.

- **Verdicts.** Each closed lead's latest verdict before it closed. Win rates (with a Wilson interval)
  where reps agreed and where they disagreed, overall and split by the model's grade and next step at
  verdict time, beside the model's own forecast for the same leads (the mean score / 100: the scores are
  calibrated probabilities). Where reps disagreed and the leads won far from that forecast (outside the
  interval), the reps saw something the model did not; where the forecast held, the model was right.
- **Overrides.** Each closed lead's override set before it closed: raised (a higher next step, or a
  higher grade) or lowered. The leads' win rate against the model's own win rates (on the holdout,
  ``reference``) for the model's value and for the rep's: the closer one was right.

Groups with fewer than ``min_leads`` closed leads say "too few to tell" and judge nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from pipeline.contracts.fields import OUTCOME_LOST, OUTCOME_WON
from pipeline.feedback.store import GRADES, NEXT_STEPS, FeedbackFrames
from pipeline.io.files import read_json

TOO_FEW = "too few to tell"
STEP_LABELS = {"sales_ready": "sales ready", "nurture": "nurture", "disqualify": "disqualify"}


def wilson_interval(won: int, n: int, *, confidence: float) -> tuple[float | None, float | None]:
    """The Wilson score interval of a win rate ``won`` / ``n`` (None for no leads)."""
    if n == 0:
        return None, None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate = won / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _group(won: pd.Series, *, confidence: float, min_leads: int, expected: float | None = None) -> dict[str, Any]:
    n, w = len(won), int(won.sum())
    low, high = wilson_interval(w, n, confidence=confidence)
    out: dict[str, Any] = {"leads": n, "won": w, "win_rate": _round(w / n if n else None),
                           "ci_low": _round(low), "ci_high": _round(high), "enough": n >= min_leads}
    if expected is not None:
        out["model_expected_win_rate"] = _round(expected)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _closed(outcomes: pd.DataFrame) -> pd.DataFrame:
    closed = outcomes[outcomes["outcome"].isin([OUTCOME_WON, OUTCOME_LOST])]
    closed = closed.drop_duplicates("record_id", keep="last")
    return pd.DataFrame({"record_id": closed["record_id"].astype(str).to_numpy(),
                         "won": (closed["outcome"] == OUTCOME_WON).to_numpy(),
                         "closed_at": pd.to_datetime(closed["as_of"], utc=True).to_numpy()})


def _before_close(feedback: pd.DataFrame, closed: pd.DataFrame, time_column: str) -> pd.DataFrame:
    """Feedback on closed leads given before each closed (a lead without a close date: any feedback)."""
    joined = feedback.assign(record_id=feedback["record_id"].astype(str)).merge(closed, on="record_id", how="inner")
    given = pd.to_datetime(joined[time_column], utc=True)
    return joined[joined["closed_at"].isna() | (given < joined["closed_at"])]


def _verdicts(verdicts: pd.DataFrame, closed: pd.DataFrame, *, confidence: float, min_leads: int) -> dict[str, Any]:
    latest = (_before_close(verdicts, closed, "created_at").sort_values(["created_at", "id"], kind="stable")
              .drop_duplicates("record_id", keep="last"))
    with_verdict = verdicts["record_id"].astype(str).nunique()
    out: dict[str, Any] = {"leads_with_verdicts": int(with_verdict), "closed": len(latest)}

    def split(rows: pd.DataFrame) -> dict[str, Any]:
        return {v: _verdict_group(rows[rows["verdict"] == v], confidence=confidence, min_leads=min_leads)
                for v in ("agree", "disagree")}

    out.update(split(latest))
    out["by_grade"] = {g: split(latest[latest["grade"] == g]) for g in reversed(GRADES)
                       if (latest["grade"] == g).any()}
    out["by_next_step"] = {s: split(latest[latest["next_step"] == s]) for s in reversed(NEXT_STEPS)
                           if (latest["next_step"] == s).any()}
    return out


def _verdict_group(rows: pd.DataFrame, *, confidence: float, min_leads: int) -> dict[str, Any]:
    expected = float(rows["score"].mean()) / 100 if len(rows) else None
    out = _group(rows["won"], confidence=confidence, min_leads=min_leads, expected=expected)
    if not out["enough"]:
        out["judged"] = TOO_FEW
    elif out["ci_low"] <= out["model_expected_win_rate"] <= out["ci_high"]:
        out["judged"] = "model"     # the leads won about as often as the model said
    else:
        out["judged"] = "rep"       # the model's forecast missed: the rep's reading of these leads was worth having
    return out


def _direction(row: pd.Series) -> tuple[str, str, str, str]:
    """raised / lowered / unchanged, by the next step if the rep set one, else by the grade; and which
    field, the model's value and the rep's."""
    for field, order, model_key in (("next_step", NEXT_STEPS, "model_next_step"), ("grade", GRADES, "model_grade")):
        rep = row[field]
        if isinstance(rep, str) and rep:
            model = row[model_key]
            moved = order.index(rep) - order.index(model)
            return ("raised" if moved > 0 else "lowered" if moved < 0 else "unchanged"), field, model, rep
    return "unchanged", "next_step", row["model_next_step"], row["model_next_step"]


def _reference_rates(reference: pd.DataFrame | None) -> dict[str, dict[str, dict[str, Any]]]:
    """The model's own win rate per next step and per grade (on the holdout)."""
    if reference is None or not len(reference):
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for field, values in (("next_step", NEXT_STEPS), ("grade", GRADES)):
        if field not in reference:
            continue
        out[field] = {}
        for value in reversed(values):
            won = reference.loc[reference[field] == value, "won"].astype(bool)
            out[field][value] = {"leads": len(won), "won": int(won.sum()),
                                 "win_rate": _round(won.mean() if len(won) else None)}
    return out


def _overrides(overrides: pd.DataFrame, closed: pd.DataFrame, reference: pd.DataFrame | None, *, confidence: float,
               min_leads: int) -> dict[str, Any]:
    rows = _before_close(overrides, closed, "updated_at")
    rates = _reference_rates(reference)
    out: dict[str, Any] = {"leads_with_overrides": int(overrides["record_id"].astype(str).nunique()),
                           "closed": len(rows), "model_win_rates": rates}
    moves = [_direction(r) for _, r in rows.iterrows()]
    direction = pd.Series([m[0] for m in moves], index=rows.index, dtype=object)
    for name in ("raised", "lowered"):
        picked = rows[direction == name]
        group = _group(picked["won"], confidence=confidence, min_leads=min_leads)
        chosen = [m for m, keep in zip(moves, direction == name, strict=True) if keep]
        model_rate = _expected(rates, [(m[1], m[2]) for m in chosen])
        rep_rate = _expected(rates, [(m[1], m[3]) for m in chosen])
        group["model_value_win_rate"], group["rep_value_win_rate"] = _round(model_rate), _round(rep_rate)
        if not group["enough"]:
            group["judged"] = TOO_FEW
        elif model_rate is None or rep_rate is None:
            group["judged"] = "no model reference"
        elif abs(group["win_rate"] - rep_rate) < abs(group["win_rate"] - model_rate):
            group["judged"] = "rep"
        elif abs(group["win_rate"] - rep_rate) > abs(group["win_rate"] - model_rate):
            group["judged"] = "model"
        else:
            group["judged"] = "tie"
        out[name] = group
    out["unchanged"] = int((direction == "unchanged").sum())
    return out


def _expected(rates: dict[str, dict[str, dict[str, Any]]], values: list[tuple[str, str]]) -> float | None:
    """The mean, over leads, of the model's win rate for each lead's (field, value); None if any is unknown."""
    found = [rates.get(field, {}).get(value, {}).get("win_rate") for field, value in values]
    if not found or any(f is None for f in found):
        return None
    return float(np.mean(np.asarray(found, dtype=float)))


def who_was_right(outcomes: pd.DataFrame, feedback: FeedbackFrames | None, *, reference: pd.DataFrame | None = None,
                  min_leads: int = 10, confidence: float = 0.95) -> dict[str, Any]:
    """The who-was-right report (see the module docstring). ``outcomes``: record_id, outcome, as_of (the
    close date of closed records); ``reference``: the model's next step, grade and won (bool) per holdout
    deal, for the model's own win rates; ``feedback`` None: no database yet. ``status``: no_feedback,
    none_closed or ok."""
    report: dict[str, Any] = {"min_leads": min_leads, "confidence": confidence}
    if feedback is None or feedback.empty:
        return {"status": "no_feedback", **report,
                "message": "No rep feedback yet: nothing to compare the model with."}
    closed = _closed(outcomes)
    report["verdicts"] = _verdicts(feedback.verdicts, closed, confidence=confidence, min_leads=min_leads)
    report["overrides"] = _overrides(feedback.overrides, closed, reference, confidence=confidence,
                                     min_leads=min_leads)
    given = [_before_close(frame, closed, column)["record_id"] for frame, column in (
        (feedback.verdicts, "created_at"), (feedback.overrides, "updated_at"), (feedback.contacts, "created_at"))]
    report["closed_leads"] = len(set().union(*map(set, given)))  # closed leads with any feedback before closing
    report["status"] = "ok" if report["verdicts"]["closed"] + report["overrides"]["closed"] else "none_closed"
    return report


def _rate(group: dict[str, Any]) -> str:
    return (f"won {group['win_rate']:.0%} ({group['won']} of {group['leads']}; "
            f"interval {group['ci_low']:.0%}-{group['ci_high']:.0%})")


def feedback_notes(report: dict[str, Any] | None) -> list[str]:
    """Short sentences on the who-was-right report, for the board, the model card and the log."""
    status = (report or {}).get("status", "no_feedback")
    if status == "no_feedback":
        return ["No rep feedback yet: who was right, the model or the reps, is reported once leads with "
                "verdicts or overrides close."]
    assert report is not None
    verdicts, overrides, least = report["verdicts"], report["overrides"], report["min_leads"]
    if status == "none_closed":
        return [f"Reps gave feedback on {max(verdicts['leads_with_verdicts'], overrides['leads_with_overrides']):,} "
                "lead(s); none has closed since, so who was right cannot be told yet."]
    notes = []
    for verdict, said in (("agree", "agreed with the score"), ("disagree", "disagreed with the score")):
        group = verdicts[verdict]
        if not group["leads"]:
            continue
        if not group["enough"]:
            notes.append(f"Leads reps {said}: {group['leads']} closed, {TOO_FEW} (at least {least} needed).")
            continue
        verdict_on = ("the model's forecast held" if group["judged"] == "model"
                      else "the model's forecast missed, so the reps saw something it did not")
        notes.append(f"Leads reps {said} {_rate(group)}, against the model's "
                     f"{group['model_expected_win_rate']:.0%}: {verdict_on}.")
    for name, said in (("raised", "raised"), ("lowered", "lowered")):
        group = overrides[name]
        if not group["leads"]:
            continue
        if not group["enough"]:
            notes.append(f"Overrides that {said} a lead: {group['leads']} closed, {TOO_FEW} "
                         f"(at least {least} needed).")
            continue
        if group["judged"] in ("rep", "model", "tie"):
            winner = {"rep": "the reps were right more often", "model": "the model was right more often",
                      "tie": "neither was closer"}[group["judged"]]
            notes.append(f"Leads reps {said} {_rate(group)}; the model's own win rate for its value is "
                         f"{group['model_value_win_rate']:.0%}, for the reps' {group['rep_value_win_rate']:.0%}: "
                         f"{winner}.")
        else:
            notes.append(f"Leads reps {said} {_rate(group)}.")
    return notes or ["Leads with rep feedback have closed, but none had its feedback before it closed."]


def evaluation_notes(evaluation_path: Path) -> list[str]:
    """:func:`feedback_notes` on the report the evaluate stage last wrote (evaluation.json's ``feedback``);
    nothing when there is no such file or report."""
    try:
        evaluation = read_json(evaluation_path)
    except (OSError, ValueError):
        return []
    report = evaluation.get("feedback") if isinstance(evaluation, dict) else None
    return feedback_notes(report) if isinstance(report, dict) else []


def headline(report: dict[str, Any] | None) -> dict[str, Any]:
    """The who-was-right figures for metrics.json, kept to two: closed leads with feedback given before they
    closed, and the win rate where reps disagreed (None while too few). Nothing while no such lead closed."""
    if not report or report.get("status") != "ok":
        return {}
    disagree = report["verdicts"]["disagree"]
    return {"fb_closed": report["closed_leads"],
            "fb_disagree_win": disagree["win_rate"] if disagree["enough"] else None}
