"""The lead board: one self-contained HTML file a sales rep opens to see scored leads and why.

The file makes no external request (inline CSS and JS only, and a Content-Security-Policy that
forbids anything else), so it works from a mail attachment or a shared drive. Every CRM string
reaches the page through Jinja's autoescaping; the script only reorders table rows and opens cards,
and never turns data into HTML, so a lead called ``<script>alert(1)</script>`` is just a name.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipeline.io.files import atomic_path
from pipeline.modeling.metrics import Verdict, model_verdict

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "lead_board.html.j2"
NEXT_STEPS = {"sales_ready": "Sales ready", "nurture": "Nurture", "disqualify": "Disqualify"}
CHECK_MARKS = {"met": ("✓", "met"), "not_met": ("✗", "not met"), "unknown": ("?", "unknown")}
UNPROMOTED = "unpromoted"


@dataclass(frozen=True)
class Reason:
    text: str
    contribution: float | None  # log-odds; None when the scorer gave no number
    width: float  # bar width, % of the lead's largest |contribution|


@dataclass(frozen=True)
class Check:
    label: str
    status: str  # met / not_met / unknown
    mark: str
    status_text: str
    reason: str | None


@dataclass(frozen=True)
class Lead:
    """One scored lead as the page shows it: display strings, with None where the CRM had nothing."""

    anchor: str  # element id of the card; positional, because record ids may hold any character
    rank: int  # position in the default order, the tie-breaker when the rep re-sorts
    record_id: str
    label: str
    score: int | None
    grade: str | None
    probability: str | None
    next_step: str | None
    next_step_label: str | None
    next_step_rule: str | None
    top_reason: str | None
    reasons_for: list[Reason]
    reasons_against: list[Reason]
    raises: list[str]
    checklist: list[Check]
    model_version: str | None
    registry_version: str | None
    model_status: str | None
    as_of: str | None
    scored_at: str | None
    score_change: int | None = None   # since the lead's previous run (None: first scored, or no history)
    trend: str | None = None
    change_reason: str | None = None
    owner: str | None = None      # display only (source.display)
    contact: str | None = None    # title, email, phone and CRM link, for the card


def _text(value: Any) -> str | None:
    """A display string, or None for missing (None, NaN, pd.NA, blank)."""
    if value is None or isinstance(value, (list, dict)):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _items(value: Any, *, column: str, record_id: str) -> list[dict[str, Any]]:
    """The list in a JSON column (or an already-parsed list); bare strings become ``{"text": ...}``.

    A malformed cell costs that lead its list, not the whole board: the rep still needs the rest.
    """
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            log.warning("lead %s: %s is not valid JSON; showing it as empty", record_id, column)
            return []
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, dict) else {"text": item} for item in value if item is not None]


def _reasons(items: list[dict[str, Any]], scale: float) -> list[Reason]:
    out = []
    for item in items:
        text = _text(item.get("text"))
        if text is None:
            continue
        contribution = _number(item.get("contribution"))
        width = round(100 * abs(contribution) / scale, 1) if contribution is not None and scale > 0 else 0.0
        out.append(Reason(text=text, contribution=contribution, width=width))
    return out


def _checks(items: list[dict[str, Any]]) -> list[Check]:
    out = []
    for item in items:
        label = _text(item.get("label")) or _text(item.get("criterion"))
        if label is None:
            continue
        status = _text(item.get("status")) or "unknown"
        mark, status_text = CHECK_MARKS.get(status, CHECK_MARKS["unknown"])
        out.append(Check(label=label, status=status if status in CHECK_MARKS else "unknown", mark=mark,
                         status_text=status_text, reason=_text(item.get("reason"))))
    return out


def _label(row: dict[str, Any]) -> str | None:
    """What a rep calls the lead: its company and contact (source.display), else a name column."""
    parts = [t for t in (_text(row.get("company")), _text(row.get("contact_name"))) if t]
    return " · ".join(parts) if parts else _text(row.get("name"))


def _percent(probability: float | None) -> str | None:
    if probability is None:
        return None
    if 0 < probability < 0.01:
        return "<1%"
    return f"{probability:.0%}"


def lead_of(row: dict[str, Any], *, index: int) -> Lead:
    """One row of the scores as the board (and `leadscore serve`) shows it."""
    record_id = _text(row.get("record_id")) or f"row {index + 1}"
    lists = {column: _items(row.get(column), column=column, record_id=record_id)
             for column in ("reasons_for", "reasons_against", "what_would_raise", "checklist")}
    sizes = [abs(c) for item in lists["reasons_for"] + lists["reasons_against"]
             if (c := _number(item.get("contribution"))) is not None]
    scale = max(sizes, default=0.0)  # bars share one scale per card, so for and against compare
    reasons_for = _reasons(lists["reasons_for"], scale)
    score = _number(row.get("score"))
    next_step = _text(row.get("next_step"))
    return Lead(
        anchor="",
        rank=0,
        record_id=record_id,
        label=_label(row) or record_id,
        score=round(score) if score is not None else None,
        grade=_text(row.get("grade")),
        probability=_percent(_number(row.get("probability"))),
        next_step=next_step,
        next_step_label=NEXT_STEPS.get(next_step, next_step) if next_step else None,
        next_step_rule=_text(row.get("next_step_rule")),
        top_reason=reasons_for[0].text if reasons_for else None,
        reasons_for=reasons_for,
        reasons_against=_reasons(lists["reasons_against"], scale),
        raises=[text for item in lists["what_would_raise"] if (text := _text(item.get("text")))],
        checklist=_checks(lists["checklist"]),
        model_version=_text(row.get("model_version")),
        registry_version=_text(row.get("registry_version")),
        model_status=_text(row.get("model_status")),
        as_of=_text(row.get("as_of")),
        scored_at=_text(row.get("scored_at")),
        score_change=None if (moved := _number(row.get("score_change"))) is None else round(moved),
        trend=_text(row.get("trend")),
        change_reason=_text(row.get("change_reason")),
        owner=_text(row.get("owner")),
        contact=" · ".join(t for c in ("contact_title", "contact_email", "contact_phone", "crm_link")
                           if (t := _text(row.get(c)))) or None,
    )


def board_leads(scores: pd.DataFrame) -> list[Lead]:
    """The leads in the board's default order: score descending (unscored last), then name."""
    leads = [lead_of(row, index=i) for i, row in enumerate(scores.to_dict("records"))]
    leads.sort(key=lambda lead: (lead.score is None, -(lead.score or 0), lead.label.casefold(), lead.record_id))
    return [replace(lead, anchor=f"lead-{i + 1}", rank=i) for i, lead in enumerate(leads)]


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def drift_rows(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the board shows of a drift report (pipeline.modeling.drift): the score and each feature above watch."""
    if not report or not report.get("rows"):
        return None
    items = [{"label": "Score", **report["score"]}] if report["score"].get("status") not in (None, "ok") else []
    items += [{"label": f["label"] or f["name"], "psi": f["psi"], "status": f["status"]}
              for f in report["features"] if f.get("status") not in (None, "ok")]
    return {"rows": f"{report['rows']:,}", "watch": report["thresholds"]["watch"],
            "act": report["thresholds"]["act"], "flagged": [{**i, "psi": f"{i['psi']:.3f}"} for i in items]}


CHANGED_SHOWN = 10  # leads in the "changed most since the last run" list


def changed_most(leads: list[Lead], n: int = CHANGED_SHOWN) -> list[Lead]:
    """The leads whose score moved most since their previous run (largest |change| first, then rank)."""
    moved = [lead for lead in leads if lead.score_change]
    return sorted(moved, key=lambda lead: (-abs(lead.score_change or 0), lead.rank))[:n]


def render_board_html(scores: pd.DataFrame, *, title: str = "Lead board", generated_at: str | None = None,
                      notes: list[str] | None = None, drift: dict[str, Any] | None = None,
                      verdict: Verdict | None = None) -> str:
    """The board as an HTML string. Without ``generated_at`` the newest ``scored_at`` stands in,
    so the same scores always give the same bytes (the file can be a DVC output). ``verdict``: the
    scoring model's (:func:`pipeline.modeling.metrics.model_verdict`), whose advice is the banner;
    without it, unpromoted scores get the verdict on a model that did not pass the gates."""
    leads = board_leads(scores)
    if verdict is None and any(lead.model_status == UNPROMOTED for lead in leads):
        verdict = model_verdict(None, promoted=False)
    if generated_at is None:
        generated_at = max((lead.scored_at for lead in leads if lead.scored_at), default=None)
    return _environment().get_template(TEMPLATE).render(
        title=title,
        generated_at=generated_at,
        notes=[note for note in notes or [] if note],
        drift=drift_rows(drift),
        leads=leads,
        changed=changed_most(leads),
        owners=any(lead.owner for lead in leads),
        tracked=any(lead.trend not in (None, "new") for lead in leads),
        as_of=sorted({lead.as_of for lead in leads if lead.as_of}),
        unpromoted=any(lead.model_status == UNPROMOTED for lead in leads),
        warning=verdict.advice if verdict is not None and verdict.warns else None,
    )


def render_board(scores: pd.DataFrame, path: Path, *, title: str = "Lead board", generated_at: str | None = None,
                 notes: list[str] | None = None, drift: dict[str, Any] | None = None,
                 verdict: Verdict | None = None) -> Path:
    """Write the self-contained HTML board atomically (pipeline.io.atomic_path) and return its path."""
    html = render_board_html(scores, title=title, generated_at=generated_at, notes=notes, drift=drift,
                             verdict=verdict)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log.info("wrote the lead board for %d leads to %s", len(scores), path)
    return path
