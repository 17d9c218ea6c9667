"""Ingest: read the raw export, validate and normalise it, quarantine what can't be used.

Every row read is either kept or quarantined with its reason, and the stage checks that
``rows read = rows kept + rows quarantined`` for each table. A problem with a single value (a
negative employee count, revenue written "n/a") blanks that value and is counted in the report;
a problem that makes the row unusable (no id, a duplicate, a date that can't be read, a stage
that maps to no outcome, a key that points nowhere) quarantines the row.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.errors import DataError
from pipeline.io import atomic_path, write_json
from pipeline.schema import (
    COLUMNS,
    EVENT_TYPES,
    INGEST_REPORT_FILE,
    OUTCOME_LOST,
    OUTCOME_OPEN,
    OUTCOME_WON,
    QUARANTINE_FILE,
    TABLES,
    find_raw_file,
)

log = logging.getLogger(__name__)

DATE_FORMAT = "%Y-%m-%d"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
MISSING_TOKENS = frozenset({"", "n/a", "na", "none", "null", "nan", "-", "--", "select", "unknown"})

# Stage names, folded (lower case, separators to spaces), and the outcome each one means.
STAGE_OUTCOMES: dict[str, str] = {
    "closed won": OUTCOME_WON, "won": OUTCOME_WON,
    "closed lost": OUTCOME_LOST, "lost": OUTCOME_LOST,
    "qualification": OUTCOME_OPEN, "discovery": OUTCOME_OPEN,
    "proposal": OUTCOME_OPEN, "negotiation": OUTCOME_OPEN,
}
QUARANTINE_COLUMNS = ["table", "line", "column", "reason", "record"]
Reasons = Callable[[pd.DataFrame], pd.Series]


@dataclass
class TableReport:
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    values_blanked: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "values_blanked": dict(sorted(self.values_blanked.items())),
        }


@dataclass
class IngestResult:
    """Clean canonical tables, the quarantined rows, and the counts per table."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    report: dict[str, TableReport]


class _Table:
    """One raw table being validated: rows are dropped only through :meth:`quarantine`."""

    def __init__(self, name: str, frame: pd.DataFrame):
        self.name = name
        self.frame = frame
        self.report = TableReport(rows_read=len(frame))
        self._bad: list[pd.DataFrame] = []

    def quarantine(self, mask: pd.Series | np.ndarray, *, column: str, reason: str | Reasons) -> None:
        """Move the rows under ``mask`` to quarantine. ``reason`` is a text, or a function that words
        the reason for each bad row (called on the bad rows only, so big tables stay cheap)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        bad = self.frame.loc[mask]
        reasons = pd.Series(reason, index=bad.index) if isinstance(reason, str) else reason(bad)
        self._bad.append(pd.DataFrame({
            "table": self.name,
            "line": bad.index.to_numpy() + 2,  # header is line 1
            "column": column,
            "reason": reasons.astype(str).to_numpy(),
            "record": [json.dumps(r, ensure_ascii=False, default=str) for r in bad.to_dict(orient="records")],
        }))
        for r, count in reasons.map(_reason_kind).value_counts().items():
            self.report.reasons[f"{column}: {r}"] += int(count)
        self.frame = self.frame.loc[~mask]

    def blank(self, column: str, mask: pd.Series, *, why: str) -> None:
        count = int(mask.sum())
        if count:
            self.frame.loc[mask, column] = np.nan
            self.report.values_blanked[f"{column}: {why}"] += count

    def finish(self) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
        self.report.rows_kept = len(self.frame)
        self.report.rows_quarantined = sum(len(b) for b in self._bad)
        if self.report.rows_kept + self.report.rows_quarantined != self.report.rows_read:
            raise AssertionError(
                f"{self.name}: {self.report.rows_read} rows read but {self.report.rows_kept} kept "
                f"+ {self.report.rows_quarantined} quarantined; rows were lost")
        return self.frame.reset_index(drop=True), self._bad


def _reason_kind(reason: str) -> str:
    """The reason without its values, so the report groups like with like."""
    return re.sub(r"\d[\d:-]*", "N", re.sub(r"'[^']*'", "'…'", str(reason)))


# ---------------------------------------------------------------- parsing helpers

def clean_text(values: pd.Series) -> pd.Series:
    """Trim, collapse inner whitespace; missing tokens such as "" or "N/A" become missing."""
    text = values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return text.mask(text.str.casefold().isin(MISSING_TOKENS))


def fold_category(values: pd.Series) -> pd.Series:
    """Category values trimmed and case-folded, so "Software " and "software" are one level."""
    return clean_text(values).str.casefold()


_NUMBER = re.compile(r"^(?P<sign>[-+])?\$?(?P<num>\d+(?:\.\d+)?)(?P<suffix>[kmb])?$")
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9}


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers from CRM text: "1,200" -> 1200, "$3.5M" -> 3500000, "n/a" -> missing.

    Text that is not a number becomes missing too; the caller decides whether that matters.
    """
    text = clean_text(values).str.casefold().str.replace(r"[,\s]", "", regex=True)
    parts = text.str.extract(_NUMBER)
    number = pd.to_numeric(parts["num"], errors="coerce")
    number = number * parts["suffix"].map(_SUFFIX).fillna(1.0).astype(float)
    negative = parts["sign"].eq("-").fillna(False).astype(bool)
    number = number.mask(negative, -number)
    return number.astype("float64")


def parse_dates(values: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series]:
    """Parsed dates, and a mask of values that were present but could not be read."""
    text = clean_text(values)
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    return parsed, text.notna() & parsed.isna()


def fold_event_type(values: pd.Series) -> pd.Series:
    """"Pricing Page View" -> "pricing_page_view"."""
    return clean_text(values).str.casefold().str.replace(r"[^0-9a-z]+", "_", regex=True).str.strip("_")


# ---------------------------------------------------------------- reading

def read_raw(path: Path, *, table: str) -> pd.DataFrame:
    """A raw export file as text columns, checked for the columns ``table`` needs."""
    try:
        if path.suffix == ".parquet":
            frame = pq.read_table(path).to_pandas()
            frame = frame.astype({c: "string" for c in frame.columns})
        else:
            if path.stat().st_size == 0:
                raise DataError(f"{path}: the file is empty")
            arrow = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in COLUMNS[table]},
                    strings_can_be_null=False,
                ),
            )
            frame = arrow.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    except DataError:
        raise
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as {path.suffix.lstrip('.').upper()}: {exc}") from None
    expected = COLUMNS[table]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        hint = ""
        if len(frame.columns) == 1 and any(sep in frame.columns[0] for sep in ";|\t"):
            hint = " The file has a single column; is it delimited by something other than ','?"
        raise DataError(f"{path}: missing required column(s) {', '.join(missing)}; "
                        f"found {', '.join(map(str, frame.columns))}.{hint}")
    extra = [c for c in frame.columns if c not in expected]
    if extra:
        log.info("%s: ignoring undeclared column(s) %s", path.name, ", ".join(map(str, extra)))
    return frame[list(expected)]


def read_export(raw_dir: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for table in TABLES:
        path = find_raw_file(raw_dir, table)
        if path is None:
            raise DataError(f"missing export file: {raw_dir / table}.csv (or .parquet)")
        tables[table] = read_raw(path, table=table)
        log.info("read %s: %d rows", path, len(tables[table]))
    return tables


# ---------------------------------------------------------------- validation per table

def _require_unique_id(t: _Table, column: str) -> None:
    ids = clean_text(t.frame[column])
    t.frame[column] = ids
    t.quarantine(ids.isna(), column=column, reason=f"missing {column}")
    dup = t.frame[column].duplicated(keep="first")
    first = pd.Series(t.frame.index[~dup], index=t.frame[column][~dup])
    t.quarantine(dup, column=column,
                 reason=lambda bad: "duplicate " + column + " (first at line "
                 + (bad[column].map(first) + 2).astype(str) + ")")


def _require_key(t: _Table, column: str, known: pd.Series, parent: str) -> None:
    keys = clean_text(t.frame[column])
    t.frame[column] = keys
    t.quarantine(keys.isna(), column=column, reason=f"missing {column}")
    t.quarantine(~t.frame[column].isin(known), column=column,
                 reason=lambda bad: "'" + bad[column].astype(str) + f"' not found in {parent}")


def _require_date(t: _Table, column: str, fmt: str, *, required: bool) -> None:
    parsed, bad = parse_dates(t.frame[column], fmt)
    t.quarantine(bad, column=column,
                 reason=lambda rows: "unparseable date '" + rows[column].astype(str) + f"' (expected {fmt})")
    t.frame[column] = parsed[~bad]
    if required:
        t.quarantine(t.frame[column].isna(), column=column, reason=f"missing {column}")


def _non_negative_number(t: _Table, column: str) -> None:
    number = parse_number(t.frame[column])
    unreadable = clean_text(t.frame[column]).notna() & number.isna()
    t.frame[column] = number
    if unreadable.any():
        t.report.values_blanked[f"{column}: not a number"] += int(unreadable.sum())
    t.blank(column, number < 0, why="negative")


def validate_accounts(frame: pd.DataFrame) -> _Table:
    t = _Table("accounts", frame.copy())
    _require_unique_id(t, "account_id")
    t.frame["company_name"] = clean_text(t.frame["company_name"])
    t.frame["industry"] = fold_category(t.frame["industry"])
    t.frame["country"] = clean_text(t.frame["country"])
    t.frame["parent_company"] = clean_text(t.frame["parent_company"])
    for column in ("employees", "annual_revenue"):
        _non_negative_number(t, column)
    year = parse_number(t.frame["founded_year"])
    t.frame["founded_year"] = year
    t.blank("founded_year", (year < 1800) | (year > pd.Timestamp.now().year), why="implausible year")
    return t


def validate_leads(frame: pd.DataFrame, *, account_ids: pd.Series) -> _Table:
    t = _Table("leads", frame.copy())
    _require_unique_id(t, "lead_id")
    _require_key(t, "account_id", account_ids, "accounts")
    _require_date(t, "created_date", DATE_FORMAT, required=True)
    for column in ("first_name", "last_name", "email", "job_title"):
        t.frame[column] = clean_text(t.frame[column])
    for column in ("lead_source", "purchase_timeline", "stated_need"):
        t.frame[column] = fold_category(t.frame[column])
    _non_negative_number(t, "stated_budget")
    return t


def validate_deals(frame: pd.DataFrame, *, lead_ids: pd.Series) -> _Table:
    t = _Table("deals", frame.copy())
    _require_unique_id(t, "deal_id")
    _require_key(t, "lead_id", lead_ids, "leads")
    stage = clean_text(t.frame["stage"]).str.casefold().str.replace(r"[-_\s]+", " ", regex=True)
    outcome = stage.map(STAGE_OUTCOMES)
    known = ", ".join(sorted(STAGE_OUTCOMES))
    t.quarantine(outcome.isna(), column="stage",
                 reason=lambda bad: "stage '" + bad["stage"].fillna("").astype(str)
                 + f"' maps to no outcome (known: {known})")
    t.frame["outcome"] = outcome[outcome.notna()]
    _require_date(t, "created_date", DATE_FORMAT, required=True)
    _require_date(t, "closed_date", DATE_FORMAT, required=False)
    closed = t.frame["outcome"] != OUTCOME_OPEN
    t.quarantine(closed & t.frame["closed_date"].isna(), column="closed_date",
                 reason="missing closed_date on a closed deal")
    t.quarantine(t.frame["closed_date"] < t.frame["created_date"], column="closed_date",
                 reason=lambda bad: "closed_date " + bad["closed_date"].dt.strftime(DATE_FORMAT)
                 + " is before created_date " + bad["created_date"].dt.strftime(DATE_FORMAT))
    _non_negative_number(t, "amount")
    t.frame["csm_assigned"] = fold_category(t.frame["csm_assigned"])
    return t


def validate_events(frame: pd.DataFrame, *, lead_ids: pd.Series) -> _Table:
    t = _Table("events", frame.copy())
    t.frame["event_type"] = fold_event_type(t.frame["event_type"])
    t.quarantine(t.frame["event_type"].isna(), column="event_type", reason="missing event_type")
    t.quarantine(~t.frame["event_type"].isin(EVENT_TYPES), column="event_type",
                 reason=lambda bad: "unknown event_type '" + bad["event_type"].astype(str) + "'")
    _require_key(t, "lead_id", lead_ids, "leads")
    _require_date(t, "timestamp", TIMESTAMP_FORMAT, required=True)
    t.frame["event_type"] = pd.Categorical(t.frame["event_type"], categories=EVENT_TYPES)
    return t


def ingest(raw: dict[str, pd.DataFrame]) -> IngestResult:
    """Validate the four raw tables (text columns) into clean canonical tables."""
    results: dict[str, _Table] = {}
    results["accounts"] = validate_accounts(raw["accounts"])
    results["leads"] = validate_leads(raw["leads"], account_ids=results["accounts"].frame["account_id"])
    results["deals"] = validate_deals(raw["deals"], lead_ids=results["leads"].frame["lead_id"])
    results["events"] = validate_events(raw["events"], lead_ids=results["leads"].frame["lead_id"])

    tables, bad = {}, []
    for name, t in results.items():
        tables[name], quarantined = t.finish()
        bad.extend(quarantined)
    quarantine = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    report = {name: t.report for name, t in results.items()}
    _require_outcomes(tables["deals"])
    return IngestResult(tables=tables, quarantine=quarantine, report=report)


def _require_outcomes(deals: pd.DataFrame) -> None:
    counts = deals["outcome"].value_counts()
    for outcome in (OUTCOME_WON, OUTCOME_LOST):
        if counts.get(outcome, 0) == 0:
            raise DataError(f"deals: no {outcome} deals after validation; a model needs both won and lost "
                            f"outcomes (found {dict(counts)})")


def write_result(result: IngestResult, *, interim_dir: Path, report_path: Path) -> None:
    interim_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in result.tables.items():
        with atomic_path(interim_dir / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    with atomic_path(interim_dir / QUARANTINE_FILE) as tmp:
        result.quarantine.to_csv(tmp, index=False)
    detail = {name: r.as_dict() for name, r in result.report.items()}
    write_json(interim_dir / INGEST_REPORT_FILE, detail)
    # The DVC metric holds the counts only, so `dvc metrics show` stays readable.
    counts = ("rows_read", "rows_kept", "rows_quarantined")
    metric = {name: {k: r[k] for k in counts} for name, r in detail.items()}
    metric["total"] = {k: sum(r[k] for r in detail.values()) for k in counts}
    write_json(report_path, metric)


def run(settings: Settings) -> IngestResult:
    """The ingest stage: ``paths.raw`` -> ``paths.interim`` plus the quarantine file and report."""
    result = ingest(read_export(settings.paths.raw))
    write_result(result, interim_dir=settings.paths.interim, report_path=settings.paths.ingest_report)
    for name, r in result.report.items():
        log.info("%s: %d rows read = %d kept + %d quarantined", name, r.rows_read, r.rows_kept, r.rows_quarantined)
    if len(result.quarantine):
        log.warning("%d rows quarantined with their reasons in %s", len(result.quarantine),
                    settings.paths.interim / QUARANTINE_FILE)
    return result
