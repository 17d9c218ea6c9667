"""Display-only columns (``source.display``: company, contact, title, owner, email, CRM link) joined onto
scores and the score history by record_id, after scoring: the model and its features never see them."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pipeline.config import DISPLAY_COLUMNS

HISTORY_DISPLAY = ("company", "contact_name", "owner")  # what the history keeps of them (to find a lead later)


def display_columns(display: pd.DataFrame | None) -> list[str]:
    """The display columns ``display`` holds, in the declared order."""
    if display is None:
        return []
    return [c for c in DISPLAY_COLUMNS.values() if c in display.columns]


def with_display(scores: pd.DataFrame, display: pd.DataFrame | None) -> pd.DataFrame:
    """``scores`` with the display columns right after record_id (missing for a lead with none); the
    row order and every other column unchanged."""
    columns = display_columns(display)
    if not columns or display is None:
        return scores
    shown = display.drop_duplicates("record_id").set_index("record_id")[columns]
    ids = scores["record_id"].astype("string")
    joined = shown.reindex(pd.Index(ids)).reset_index(drop=True)
    joined.index = scores.index
    rest = scores.drop(columns=[c for c in columns if c in scores.columns])
    at = list(rest.columns).index("record_id") + 1 if "record_id" in rest.columns else 0
    parts = [rest.iloc[:, :at], joined.astype("string"), rest.iloc[:, at:]]
    return pd.concat(parts, axis=1)


def with_display_history(table: pa.Table, display: pd.DataFrame | None) -> pa.Table:
    """The history rows with their company, contact and owner filled in from ``display``."""
    if display is None or not table.num_rows:
        return table
    shown = display.drop_duplicates("record_id").set_index("record_id")
    ids = pd.Index(table.column("record_id").to_pandas())
    for name in HISTORY_DISPLAY:
        if name in shown.columns and name in table.schema.names:
            values = shown[name].reindex(ids).astype(object).where(lambda v: v.notna(), None).to_numpy()
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pa.array(values, type=pa.string(), from_pandas=True))
    return table
