"""The scored leads a rep filters, searches, sorts and pages through: the latest scores file, held in
memory and read again when the scoring job rewrites it. Pure pandas, no web code."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import DISPLAY_COLUMNS
from pipeline.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PAGE_SIZE = 50
SORTS = {
    "score": (["score", "record_id"], [False, True]),
    "score_asc": (["score", "record_id"], [True, True]),
    "change": (["_moved", "score", "record_id"], [False, False, True]),
    "company": (["_company", "score", "record_id"], [True, False, True]),
}
NEXT_STEPS = ("sales_ready", "nurture", "disqualify")
GRADES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Query:
    """What a rep asked the list for; every value validated (unknown values are an error, not ignored)."""

    owner: str | None = None
    grade: str | None = None
    next_step: str | None = None
    changed: bool = False
    q: str = ""
    sort: str = "score"
    page: int = 1

    @classmethod
    def of(cls, params: dict[str, str]) -> Query:
        def value(key: str) -> str | None:
            text = (params.get(key) or "").strip()
            return text or None

        grade, step, sort = value("grade"), value("next_step"), value("sort") or "score"
        if grade is not None and grade not in GRADES:
            raise ValueError(f"grade: {grade!r} is not one of {', '.join(GRADES)}")
        if step is not None and step not in NEXT_STEPS:
            raise ValueError(f"next_step: {step!r} is not one of {', '.join(NEXT_STEPS)}")
        if sort not in SORTS:
            raise ValueError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        try:
            page = int(value("page") or 1)
        except ValueError:
            raise ValueError("page: a whole number from 1") from None
        return cls(owner=value("owner"), grade=grade, next_step=step, changed=value("changed") in ("1", "on", "true"),
                   q=(value("q") or "")[:200], sort=sort, page=max(page, 1))

    def args(self, **changes: Any) -> dict[str, str]:
        """The query string of this query with ``changes`` (for links that keep the other filters)."""
        values = {"owner": self.owner, "grade": self.grade, "next_step": self.next_step,
                  "changed": "1" if self.changed else None, "q": self.q or None, "sort": self.sort,
                  "page": str(self.page)}
        values.update({k: (None if v is None else str(v)) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int           # leads matching the query (all pages)
    page: int
    pages: int
    owners: list[str] = field(default_factory=list)  # the owners the viewer may filter by


class LeadIndex:
    """The scores file (scores.parquet) in memory, reloaded when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._frame = pd.DataFrame()
        self.frame()  # fail at start-up, not on a rep's first click

    def frame(self) -> pd.DataFrame:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise ConfigError(f"serve: no scores at {self.path}; run the pipeline first (`make run`) or pass "
                              "--scores PATH (a scores .parquet)") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._frame = _prepared(self.path)
                self._stamp = stamp
                log.info("serve: %d scored leads from %s", len(self._frame), self.path)
            return self._frame

    def lead(self, record_id: str) -> dict[str, Any] | None:
        frame = self.frame()
        hit = frame.index[frame["record_id"] == record_id]
        return None if not len(hit) else _row(frame.loc[hit[0]])

    def search(self, query: Query, *, owner: str | None, overrides: pd.DataFrame | None = None,
               page_size: int = PAGE_SIZE) -> Page:
        """The page of leads ``query`` asks for, among those of ``owner`` (None: every owner's).
        ``overrides`` (record_id, rep_next_step, rep_grade) make the grade and next-step filters use
        the rep's value where a rep overrode the model's."""
        frame = self.frame()
        grade, step = frame["grade"].astype(object), frame["next_step"].astype(object)
        if overrides is not None and len(overrides):
            by_id = overrides.drop_duplicates("record_id").set_index("record_id")
            for column, model in (("rep_next_step", "step"), ("rep_grade", "grade")):
                if column not in by_id:
                    continue
                rep = frame["record_id"].astype(object).map(by_id[column].astype(object).to_dict())
                if model == "step":
                    step = rep.where(rep.notna(), step)
                else:
                    grade = rep.where(rep.notna(), grade)
        keep = pd.Series(True, index=frame.index)
        owners_seen = frame["_owner"]
        if owner is not None:
            keep &= owners_seen == owner.casefold()
        visible = keep.copy()
        if query.owner:
            keep &= owners_seen == query.owner.casefold()
        if query.grade:
            keep &= grade == query.grade
        if query.next_step:
            keep &= step == query.next_step
        if query.changed:
            keep &= frame["_moved"] > 0
        if query.q:
            keep &= frame["_haystack"].str.contains(query.q.casefold(), regex=False)
        chosen = frame[keep]
        by, ascending = SORTS[query.sort]
        chosen = chosen.sort_values(by, ascending=ascending, kind="stable", na_position="last")
        pages = max(1, math.ceil(len(chosen) / page_size))
        page = min(query.page, pages)
        rows = [_row(r) for _, r in chosen.iloc[(page - 1) * page_size: page * page_size].iterrows()]
        owners = sorted({o for o in frame.loc[visible, "owner"].dropna().unique()}, key=str.casefold)
        return Page(rows=rows, total=len(chosen), page=page, pages=pages, owners=owners)


def _prepared(path: Path) -> pd.DataFrame:
    """The scores with the search, sort and owner helper columns (prefixed _, never shown)."""
    if path.suffix.lower() != ".parquet":
        raise ConfigError(f"serve: --scores {path} must be a .parquet scores file (the CSV has no reasons' detail)")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"serve: {path} cannot be read as a scores file ({exc})") from None
    missing = [c for c in ("record_id", "score", "grade", "next_step") if c not in frame.columns]
    if missing:
        raise DataError(f"serve: {path} lacks column(s) {', '.join(missing)}; is it a leadscore scores file?")
    frame = frame.reset_index(drop=True)
    frame["record_id"] = frame["record_id"].astype("string")
    for column in ("company", "contact_name", "owner"):
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype="string")
    text = (frame["company"].fillna("") + " " + frame["contact_name"].fillna("") + " " + frame["record_id"])
    frame["_haystack"] = text.astype("string").str.casefold()
    frame["_company"] = frame["company"].astype("string").str.casefold()
    frame["_owner"] = frame["owner"].astype("string").str.strip().str.casefold()
    moved = frame["score_change"] if "score_change" in frame.columns else pd.Series(0, index=frame.index)
    frame["_moved"] = pd.to_numeric(moved, errors="coerce").abs().fillna(0)
    return frame


OPTIONAL = (*DISPLAY_COLUMNS.values(), "score_change", "trend", "change_reason", "model_version", "registry_version")


def _row(row: pd.Series) -> dict[str, Any]:
    """One lead for the templates: missing values None, and every optional column present."""
    out: dict[str, Any] = dict.fromkeys(OPTIONAL)
    out.update({k: (None if _missing(v) else v) for k, v in row.items() if not str(k).startswith("_")})
    return out


def _missing(value: Any) -> bool:
    if isinstance(value, (list, dict)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
