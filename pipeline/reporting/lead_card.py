"""`leadscore explain LEAD_ID`: one scored lead's card in the terminal, from a row of scores.parquet."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def lead_card(row: pd.Series, *, history: pd.DataFrame | None = None) -> Any:
    """A rich renderable of one scored lead (a row of scores.parquet): what `leadscore explain` prints,
    with the lead's last runs from the score history when ``history`` is given."""

    def items(column: str) -> list[dict[str, Any]]:
        value = row.get(column)
        return json.loads(value) if isinstance(value, str) and value else []

    head = Text()
    head.append(f"Score {row['score']}  Grade {row['grade']}", style="bold")
    head.append(f"   (probability {float(row['probability']):.0%})   next step: ")
    head.append(str(row.get("next_step", "")).replace("_", " "), style="bold")
    rule = Text(str(row.get("next_step_rule") or ""), style="dim")  # a sentence: "Nurture: the score is ..."
    reasons_table = Table(show_header=True, box=None, pad_edge=False)
    reasons_table.add_column("", width=2)
    reasons_table.add_column("Reason")
    reasons_table.add_column("Effect", justify="right")
    for sign, column, style in (("+", "reasons_for", "green"), ("-", "reasons_against", "red")):
        for item in items(column):
            bar = "#" * max(1, min(20, round(abs(float(item["contribution"])) * 20)))
            reasons_table.add_row(Text(sign, style=style), Text(item["text"]), Text(bar, style=style))
    checks = Table(show_header=True, box=None, pad_edge=False)
    checks.add_column("Criterion")
    checks.add_column("Status")
    checks.add_column("Why")
    marks = {"met": ("met", "green"), "not_met": ("not met", "red"), "unknown": ("unknown", "yellow")}
    for item in items("checklist"):
        word_, style = marks.get(item["status"], (item["status"], ""))
        checks.add_row(Text(item["label"]), Text(word_, style=style), Text(item.get("reason") or ""))
    raise_lines = [Text("- " + item["text"]) for item in items("what_would_raise_detail")]
    registry_version = _given(row.get("registry_version")) or "none"
    footer = Text(f"model {row.get('model_version')} (registry version {registry_version}, "
                  f"{row.get('model_status')}); as of {row.get('as_of')}; scored {row.get('scored_at')}", style="dim")
    parts: list[Any] = [head, rule]
    def shown(*columns: str) -> list[str]:
        return [str(row[c]) for c in columns if isinstance(row.get(c), str) and row.get(c)]

    who = shown("company", "contact_name", "contact_title")
    reach = [f"owner {o}" for o in shown("owner")] + shown("contact_email", "contact_phone", "crm_link")
    parts = [*([Text("  ·  ".join(who), style="bold")] if who else []),
             *([Text("  ·  ".join(reach), style="dim")] if reach else []), *parts]
    change = row.get("change_reason")
    if isinstance(change, str) and change:
        parts += [Text(""), Text(f"Since the last run ({row.get('trend')}): ", style="bold") + Text(change)]
    parts += [Text(""), Text("Why this score", style="bold"), reasons_table]
    if raise_lines:
        parts += [Text(""), Text("What would raise it", style="bold"), *raise_lines]
    if checks.row_count:
        parts += [Text(""), Text("Qualification checklist", style="bold"), checks]
    if row.get("model_status") == "unpromoted":  # the board's banner, word for word
        from pipeline.modeling.metrics import model_verdict  # only here: `explain` stays quick to start

        parts += [Text(""), Text(model_verdict(None, promoted=False).advice, style="bold red")]
    if history is not None and len(history):
        runs = Table(show_header=True, box=None, pad_edge=False)
        for title, justify in (("Scored", "left"), ("Score", "right"), ("Grade", "left"), ("Change", "right"),
                               ("Trend", "left"), ("Model", "left")):
            runs.add_column(title, justify=justify)  # type: ignore[arg-type]
        for r in history.itertuples(index=False):
            moved = "" if pd.isna(r.score_change) else f"{int(r.score_change):+d}"
            runs.add_row(str(r.scored_at)[:16].replace("T", " "), str(r.score), str(r.grade), moved, str(r.trend),
                         f"{r.model_version} (v{_given(r.registry_version) or '-'})")
        parts += [Text(""), Text(f"Score history (last {len(history)} runs)", style="bold"), runs]
    parts += [Text(""), footer]
    return Panel(Group(*parts), title=f"Lead {row['record_id']}", expand=False)


def _given(value: Any) -> str | None:
    """A value to print, or None for missing (None, NaN, blank)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return None if text in ("", "nan", "<NA>", "None") else text
