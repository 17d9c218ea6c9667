"""Ingest: read any CRM export through its ``source:`` mapping, validate, normalise, quarantine.

The mapping (``pipeline.config.SourceParams``) says which file holds the rows to train on and
score (the *primary* table), which lookup tables join onto it, and where an activity log is.
Ingest turns that into two clean tables:

* ``records``: one row per primary row, with ``record_id``, ``outcome`` (won / lost / open),
  ``decision_date``, ``created_date``, the key that events attach by, and every declared field
  under its field name, typed by its kind;
* ``events``: ``event_key``, ``event_type`` (snake_case), ``timestamp``.

Every row read is either kept or quarantined with the row, the column and the reason, and the
stage checks ``rows read = rows kept + rows quarantined`` for every table. A single bad value
(a negative headcount, revenue written "n/a") blanks that value and is counted; a problem that
makes the row unusable (no id, a duplicate id, an outcome that maps to nothing, a decision
date that can't be read, a malformed CSV line, an event keyed to nothing) quarantines the row.
A problem with a whole file (missing, empty, undecodable, missing columns, no won or no lost
row) stops the stage with a :class:`DataError` that names it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import (
    DISPLAY_COLUMNS,
    ColumnParams,
    EventsParams,
    FileParams,
    LookupParams,
    PrimaryParams,
    SourceParams,
    TableParams,
)
from pipeline.contracts.fields import CANONICAL_FIELDS, OUTCOME_LOST, OUTCOME_OPEN, OUTCOME_WON, FieldInfo
from pipeline.contracts.files import (
    CLOCK_FILE,
    DISPLAY_FILE,
    EVENT_ACCOUNTS_FILE,
    EVENTS_FILE,
    FIELDS_FILE,
    INGEST_REPORT_FILE,
    MAPPING_FILE,
    QUARANTINE_FILE,
    RECORDS_FILE,
)
from pipeline.data.clock import DateCounts, ExportClock, after, export_clock
from pipeline.data.event_spill import EventSpill, regrouped
from pipeline.data.parsing import (
    apply_aliases,
    arrow_text,
    casefold,
    clean_dates,
    clean_text,
    fold,
    fold_event_type,
    fold_key,
    on_uniques,
    parse_boolean,
    parse_dates,
    parse_number,
    spellings,
    take_text,
)
from pipeline.data.quarantine import json_records, reason_kinds
from pipeline.data.sources import explicit_mapping
from pipeline.data.text_lookup import TextLookup
from pipeline.errors import DataError
from pipeline.io.files import atomic_path, write_json
from pipeline.io.tables import TableReader, spreadsheet_safe
from pipeline.runtime import return_freed_memory

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ["table", "line", "column", "reason", "record"]
EVENT_CHUNK_ROWS = 1 << 19  # activity rows read and checked at a time (the raw text of one chunk is held)
RECORD_KEYS = ["record_id", "outcome", "decision_date", "created_date", "event_key", "account_key"]
Reasons = Callable[[pd.DataFrame], pd.Series]


@dataclass
class TableReport:
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    values_blanked: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "values_blanked": dict(sorted(self.values_blanked.items())),
            "notes": self.notes,
        }


@dataclass
class IngestResult:
    """The clean ``records`` and ``events`` tables, the quarantined rows, and counts per table."""

    records: pd.DataFrame
    activity: _StreamedEvents | None  # the checked activity log, its kept rows on disk (None: no log)
    fields: list[FieldInfo]
    quarantine: pd.DataFrame
    report: dict[str, TableReport]
    event_accounts: pd.DataFrame | None = None   # event_key -> account_key, when source.account is declared
    mapping: SourceParams | None = None          # the explicit mapping the export was read with
    display: pd.DataFrame | None = None          # record_id + display-only columns (source.display); never features
    clock: ExportClock | None = None             # the export's date, and the rule that gave it (None: no dates)

    @cached_property
    def events(self) -> pd.DataFrame | None:
        """The activity log's kept rows in memory (``event_key``, ``event_type``, ``timestamp``). The
        ingest stage writes them from disk instead: a log of 100M rows would take gigabytes."""
        if self.activity is None:
            return None
        events = self.activity.frame()
        EVENTS_SCHEMA.validate(events, inplace=True)
        return events

    def outcome_counts(self) -> dict[str, int]:
        """Records kept per outcome (won, lost, open), each present."""
        counts = self.records["outcome"].value_counts()
        return {o: int(counts.get(o, 0)) for o in (OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN)}


# ---------------------------------------------------------------- reading

def read_table(path: Path, *, spec: FileParams, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All columns of an export file as text, and the malformed lines it skipped (as quarantine rows).

    The frame's index is the file line of each row (header = line 1) when it can be known. A Parquet
    export reads as the equivalent CSV would (native timestamps as ISO 8601 UTC text, numbers as
    decimals, lists and structs as JSON text: see :func:`pipeline.io.tables.text_column`).
    """
    reader = TableReader(path, label=name, delimiter=spec.delimiter, encoding=spec.encoding, blanks_null=False,
                         folders=False, text=True)
    table = reader.read()
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    if reader.format == "parquet":
        frame.index = pd.RangeIndex(2, len(frame) + 2)
        return frame, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    frame.index = pd.Index(_file_lines(reader, len(frame)))
    return frame, _malformed(reader.malformed, name=name)


def require_columns(frame: pd.DataFrame, columns: list[str], *, name: str, path: Path, delimiter: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if not missing:
        return
    hint = ""
    if len(frame.columns) == 1:
        found = next((d for d in ";|\t," if d != delimiter and d in str(frame.columns[0])), None)
        if found:
            hint = f" The file has a single column; it looks delimited by {found!r}: set delimiter: {found!r}."
    shown = ", ".join(map(str, list(frame.columns)[:30]))
    raise DataError(f"{name}: {path} lacks column(s) {', '.join(missing)} named in the source mapping; "
                    f"found: {shown}.{hint}")


# ---------------------------------------------------------------- one table under validation

class _Table:
    """A raw table being validated; rows leave it only through :meth:`quarantine`."""

    def __init__(self, name: str, frame: pd.DataFrame, malformed: pd.DataFrame, *, missing: frozenset[str]):
        self.name = name
        self.raw = frame
        self.frame = pd.DataFrame(index=frame.index)
        self._pos = np.arange(len(frame))  # where each row of ``frame`` is in ``raw``
        self.missing = missing
        self.report = TableReport(rows_read=len(frame) + len(malformed))
        self._bad: list[pd.DataFrame] = [malformed] if len(malformed) else []
        self._calls = 0                  # quarantine calls so far, empty ones too: the rule each bad frame is of
        self.rule_of: list[int] = [-1] if len(malformed) else []  # of each frame in ``_bad`` (-1: malformed lines)
        self.spellings: dict[str, dict[str, str]] = {}  # categorical field -> folded value -> CRM spelling
        for kind, count in reason_kinds(malformed["reason"]).items() if len(malformed) else ():
            self.report.reasons[f"(row): {kind}"] += int(count)

    def rows(self, column: str) -> pd.Series:
        """The raw text of ``column`` for the rows still in ``frame`` (by position: a label lookup of
        millions of lines costs seconds)."""
        return self.raw[column].take(self._pos)

    def text(self, column: str) -> pd.Series:
        return on_uniques(self.rows(column), lambda s: clean_text(s, self.missing))

    def quarantine(self, mask: pd.Series | np.ndarray, *, column: str, reason: str | Reasons) -> None:
        """Move rows under ``mask`` (aligned with ``frame``) to quarantine. ``reason`` is a text or a
        function wording it per bad row, called on the bad raw rows only."""
        mask = np.asarray(mask, dtype=bool)
        self._calls += 1
        if not mask.any():
            return
        self.rule_of.append(self._calls)
        self._bad.append(_quarantine_rows(self.name, self.raw.take(self._pos[mask]), column=column, reason=reason,
                                          report=self.report))
        self.frame = self.frame.loc[~mask]
        self._pos = self._pos[~mask]

    def positions(self) -> np.ndarray:
        """Where each row still in ``frame`` is in the table read (ascending)."""
        return self._pos.copy()

    def keep_raw(self, columns: set[str]) -> None:
        """Drop the raw text of every other column: once no rule can quarantine a row, the raw rows
        are read only for joins and display."""
        self.raw = self.raw[[c for c in self.raw.columns if c in columns]]

    def blank(self, name: str, mask: pd.Series, *, why: str) -> None:
        count = int(np.asarray(mask, dtype=bool).sum())
        if count:
            self.frame.loc[np.asarray(mask, dtype=bool), name] = np.nan
            self.report.values_blanked[f"{name}: {why}"] += count

    def finish(self) -> list[pd.DataFrame]:
        return _finish(self.name, len(self.frame), self._bad, self.report)


# ---------------------------------------------------------------- steps

def _ids(t: _Table, column: str, *, rule: str, order: pd.Series | None) -> None:
    """Set ``t.frame['_id']`` (folded for joining) and ``record id`` text; quarantine missing and duplicates."""
    ids = t.text(column)
    t.frame["_id_text"] = ids
    t.frame["_id"] = on_uniques(ids, casefold)
    t.quarantine(t.frame["_id"].isna(), column=column, reason=f"missing {column}")
    encoded = pc.dictionary_encode(arrow_text(t.frame["_id"]))  # numbered in order of first appearance
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)  # none missing here
    n_ids = len(encoded.dictionary)
    lines = t.frame.index.to_numpy()
    if rule == "keep_latest":
        # The row kept for an id is its last in (order, line) order, a missing order sorting last. Only
        # the rows of repeated ids are ranked: most ids are on one row, which is kept.
        when = order.reindex(t.frame.index) if order is not None else pd.Series(0, index=t.frame.index)
        unordered = when.isna().to_numpy()
        value = when.to_numpy().view(np.int64) if when.dtype.kind in "mM" else when.fillna(0).to_numpy()
        kept_line = np.empty(n_ids, dtype=lines.dtype)  # every id's is set below: alone, or ranked
        alone = np.bincount(codes, minlength=n_ids)[codes] == 1
        kept_line[codes[alone]] = lines[alone]
        many = np.flatnonzero(~alone)
        code, line, none = codes[many], lines[many], unordered[many]
        ranked = np.lexsort((line, np.where(none, 0, value[many]), none, code))  # by id, order, line
        last = np.flatnonzero(np.append(code[ranked][1:] != code[ranked][:-1], True)) if len(many) else many
        kept_line[code[ranked][last]] = line[ranked][last]
        superseded = lines != kept_line[codes]
        t.quarantine(superseded, column=column, reason=_naming_lines(
            f"superseded by a later row with the same {column} (line ", kept_line[codes[superseded]]))
    else:
        # The first row of each id, in the ids' order: where the codes (numbered as met) reach a new high.
        firsts = np.flatnonzero(codes > np.maximum.accumulate(np.append(-1, codes[:-1]))) if len(codes) else codes
        dup = np.ones(len(codes), dtype=bool)
        dup[firsts] = False
        t.quarantine(dup, column=column,
                     reason=_naming_lines(f"duplicate {column} (first at line ", lines[firsts][codes[dup]]))


def _naming_lines(text: str, lines: np.ndarray) -> Reasons:
    """A reason per quarantined row: ``text``, then the line of the row its id is kept or first at (the
    rows' own id codes: an id written with extra spaces inside names its line too), then ")"."""
    return lambda bad: text + pd.Series(lines, index=bad.index).astype(str) + ")"


def _date(t: _Table, column: str, fmt: str, *, name: str, required: bool) -> None:
    text = t.text(column)
    parsed = parse_dates(text, fmt)
    bad = text.notna() & parsed.isna()
    if required:
        t.quarantine(bad.to_numpy(), column=column,
                     reason=lambda rows: "unparseable date '" + rows[column].astype(str) + f"' (expected {fmt})")
        t.frame[name] = parsed.reindex(t.frame.index)
    else:
        _set_parsed(t, name, text, parsed, why=f"unparseable date (expected {fmt})")


def _set_parsed(t: _Table, name: str, text: pd.Series, value: pd.Series, *, why: str) -> None:
    """Store a parsed column; values present in the text but unreadable are blank, and counted."""
    t.frame[name] = value
    unreadable = text.notna() & value.isna()
    if unreadable.any():
        t.report.values_blanked[f"{name}: {why}"] += int(unreadable.sum())


def _field(t: _Table, name: str, col: ColumnParams, kind: str) -> None:
    text = t.text(col.column)
    if kind == "numeric":
        _set_parsed(t, name, text, parse_number(text), why="not a number")
        if col.min is not None:
            t.blank(name, t.frame[name] < col.min, why=f"below {col.min:g}")
        if col.max is not None:
            t.blank(name, t.frame[name] > col.max, why=f"above {col.max:g}")
    elif kind == "boolean":
        _set_parsed(t, name, text, parse_boolean(text), why="not yes/no")
    elif kind == "date":
        fmt = col.format or "%Y-%m-%d"
        _set_parsed(t, name, text, parse_dates(text, fmt), why=f"unparseable date (expected {fmt})")
    elif kind == "categorical":
        t.frame[name] = on_uniques(text, lambda s: apply_aliases(fold(s), col.aliases))
        t.spellings[name] = spellings(text, t.frame[name])  # display only: the CRM's own casing
    else:
        t.frame[name] = text


def field_infos(table_name: str, table: TableParams) -> list[FieldInfo]:
    infos = []
    for name, col in table.columns.items():
        default_kind, default_role, default_label = CANONICAL_FIELDS.get(name, (None, None, None))
        kind = col.kind or default_kind
        role = col.role or default_role
        label = col.label or default_label or name.replace("_", " ").capitalize()
        assert kind is not None and role is not None  # config validation guarantees it
        infos.append(FieldInfo(name=name, kind=kind, role=role, label=label, table=table_name, column=col.column))
    return infos


def _fields(t: _Table, table: TableParams, infos: list[FieldInfo]) -> None:
    for info in infos:
        _field(t, info.name, table.columns[info.name], info.kind)


def _outcome(t: _Table, primary: PrimaryParams) -> None:
    spec = primary.outcome
    raw = t.rows(spec.column).astype("string").str.strip()
    folded = on_uniques(raw.fillna(""), fold_key)
    mapping = {fold_key(pd.Series([v])).iloc[0]: outcome
               for outcome in (OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN) for v in getattr(spec, outcome)}
    outcome = folded.map(mapping)
    listing = "; ".join(f"{o}: {', '.join(map(repr, getattr(spec, o))) or '-'}" for o in ("won", "lost", "open"))
    t.quarantine(outcome.isna().to_numpy(), column=spec.column,
                 reason=lambda bad: f"{spec.column} value '" + bad[spec.column].fillna("").astype(str).str.strip()
                 + f"' maps to no outcome ({listing})")
    t.frame["outcome"] = outcome.reindex(t.frame.index)


def _primary(raw: pd.DataFrame, malformed: pd.DataFrame, source: SourceParams,
             infos: list[FieldInfo]) -> _Table:
    primary = source.primary
    assert primary is not None
    t = _Table("primary", raw, malformed, missing=frozenset(v.casefold() for v in source.missing_values))
    _outcome(t, primary)
    if primary.created_date is not None:
        _date(t, primary.created_date.column, primary.created_date.format, name="created_date", required=False)
    else:
        t.frame["created_date"] = pd.Series(pd.NaT, index=t.frame.index, dtype="datetime64[us]")
    if primary.id is not None:
        _ids(t, primary.id, rule=primary.duplicates, order=t.frame["created_date"])
        t.frame["record_id"] = t.frame["_id_text"]
    else:
        t.frame["record_id"] = "row-" + pd.Series(t.frame.index.astype(str), index=t.frame.index)
        t.report.notes.append("no id column declared: record_id is 'row-<line>' of the file")
    if primary.decision_date is not None:
        d = primary.decision_date
        _date(t, d.column, d.format, name="decision_date", required=True)
        closed = (t.frame["outcome"] != OUTCOME_OPEN).to_numpy()
        t.quarantine(closed & t.frame["decision_date"].isna().to_numpy(), column=d.column,
                     reason=f"missing {d.column} on a closed (won or lost) row")
        early = (t.frame["decision_date"] < t.frame["created_date"]).fillna(False).to_numpy(dtype=bool)
        t.quarantine(early, column=d.column,
                     reason=lambda bad: f"{d.column} '" + bad[d.column].astype(str) + "' is before "
                     + (primary.created_date.column if primary.created_date else "the created date") + " '"
                     + (bad[primary.created_date.column].astype(str) if primary.created_date else "")
                     + "'")
        t.frame.loc[(t.frame["outcome"] == OUTCOME_OPEN).to_numpy(), "decision_date"] = pd.NaT
    else:
        t.frame["decision_date"] = pd.Series(pd.NaT, index=t.frame.index, dtype="datetime64[us]")
        t.report.notes.append("no decision date declared: training falls back to a seeded stratified split")
    _fields(t, primary, infos)
    return t


def _lookup(name: str, raw: pd.DataFrame, malformed: pd.DataFrame, spec: LookupParams,
            source: SourceParams, infos: list[FieldInfo]) -> _Table:
    t = _Table(name, raw, malformed, missing=frozenset(v.casefold() for v in source.missing_values))
    _ids(t, spec.id, rule=spec.duplicates, order=None)
    _fields(t, spec, infos)
    return t


class _StreamedEvents:
    """The activity table validated a chunk at a time (``EVENT_CHUNK_ROWS`` rows), on Arrow: the same
    rules, in the same order and wording, as a table checked whole. A chunk's keys and types are cleaned once
    per distinct value, and only three small columns of each kept row stay: the key as a code into
    ``known`` (the ids events may attach to), the type as a code into the types met, the time. The
    quarantine is the whole-file one: malformed lines first, then each rule's rows in line order.
    Rows quarantined later (the export's clock) are read again from the file by their row number,
    the only time a kept row's raw text is needed again."""

    def __init__(self, path: Path, spec: EventsParams, source: SourceParams, known: pd.Index, *,
                 folder: Path | None = None) -> None:
        self.name, self.path, self.spec = "events", path, spec
        self.missing = frozenset(v.casefold() for v in source.missing_values)
        reader = self._reader()
        require_columns(pd.DataFrame(columns=reader.columns), [spec.key, spec.type, spec.timestamp.column],
                        name="events", path=path, delimiter=spec.delimiter)
        self.report = TableReport()
        self._known_ids = known
        self._known = TextLookup(arrow_text(pd.Series(known, dtype="string")))
        self._types: dict[str, int] = {}  # type name -> its code, in the order met
        self.spill = EventSpill(len(known), folder=folder)  # the kept rows' codes, on disk
        by_rule: dict[int, list[pd.DataFrame]] = {}
        dropped: list[np.ndarray] = []  # row numbers quarantined so far
        rows = 0
        for start, table, (bad, key, kind, time) in _in_parallel(self._check, self._chunks(reader)):
            ok = np.ones(table.num_rows, dtype=bool)
            for rule, positions in bad:
                ok[positions] = False
                dropped.append(positions + start)
                by_rule.setdefault(rule, []).append(self._bad_rows(table, start, positions, rule))
            self.spill.append(key=key[ok], kind=kind()[ok], time=time[ok])
            rows += table.num_rows
        self.spill.finish()
        self._malformed_lines = np.array(sorted(m.line for m in reader.malformed if m.line is not None),
                                         dtype=np.int64) if reader.format != "parquet" else np.array([], np.int64)
        malformed = _malformed(reader.malformed, name="events")
        for kind_, count in reason_kinds(malformed["reason"]).items() if len(malformed) else ():
            self.report.reasons[f"(row): {kind_}"] += int(count)
        self.report.rows_read = rows + len(malformed)
        # The row numbers the rules quarantined: a kept row's number is its position plus those before it.
        self._checked_out = np.sort(np.concatenate(dropped)) if dropped else np.array([], dtype=np.int64)
        self._bad = [malformed] if len(malformed) else []
        for rule in sorted(by_rule):
            bad_rows = pd.concat(by_rule[rule], ignore_index=True)
            bad_rows["line"] = self._lines_at(bad_rows["line"].to_numpy(dtype=np.int64))
            self._bad.append(bad_rows)
        log.info("read %s: %d rows (%d malformed lines), %d kept", path, rows, len(malformed), self.spill.kept)

    # The rules, as numbered in the quarantine's order (malformed lines come first).
    MISSING_TYPE, MISSING_KEY, UNKNOWN_KEY, UNREADABLE_TIME, MISSING_TIME = range(1, 6)

    def _check(self, table: pa.Table) -> tuple[list[tuple[int, np.ndarray]], np.ndarray, Callable[[], np.ndarray],
                                               np.ndarray]:
        """One chunk's failing rows per rule (positions in the chunk, each row under its first rule
        only), and every row's key code, type code and time (microseconds; meaningless where bad).
        Chunks are checked two at a time, so the type codes come as a function, called in file order
        (the codes number the types in the order met)."""
        spec = self.spec
        open_ = np.ones(table.num_rows, dtype=bool)  # rows no rule has failed yet
        bad: list[tuple[int, np.ndarray]] = []

        def fail(rule: int, mask: np.ndarray) -> None:
            hit = mask & open_
            if hit.any():
                bad.append((rule, np.flatnonzero(hit)))
                open_[hit] = False

        names, kind = self._type_names(table.column(spec.type))
        fail(self.MISSING_TYPE, kind < 0)
        key = self._key_codes(table.column(spec.key))
        fail(self.MISSING_KEY, key == -1)
        fail(self.UNKNOWN_KEY, key == -2)
        present, parsed = clean_dates(_text_series(table.column(spec.timestamp.column)), spec.timestamp.format,
                                      self.missing)
        unread = parsed.isna().to_numpy()
        fail(self.UNREADABLE_TIME, present & unread)
        fail(self.MISSING_TIME, unread)
        time = parsed.to_numpy().view(np.int64)

        def type_codes() -> np.ndarray:
            code_of = np.array([-1 if n is None else self._types.setdefault(n, len(self._types)) for n in names],
                               dtype=np.int64)
            return np.append(code_of, -1)[kind].astype(np.int16)
        return bad, key.astype(np.int32), type_codes, time

    def _type_names(self, column: pa.ChunkedArray) -> tuple[list[str | None], np.ndarray]:
        """A chunk's distinct event types, folded (None: missing), and each row's position among them
        (-1: missing)."""
        encoded = pc.dictionary_encode(column.combine_chunks())
        folded = fold_event_type(apply_aliases(fold(clean_text(_text_series(encoded.dictionary), self.missing)),
                                               self.spec.aliases))
        names = [None if pd.isna(n) else str(n) for n in folded]
        local = _spread(np.array([-1 if n is None else i for i, n in enumerate(names)], dtype=np.int64),
                        encoded.indices)
        return names, local

    def _key_codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """Each row's key as a code into ``known`` (-1: missing, -2: not a known key). In ASCII text a
        key that lowercases to a known id is that id: the ids are cleaned and folded, so a key with
        whitespace to trim or a missing token never lowercases to one, and folding ASCII is
        lowercasing it. Only the other keys are cleaned and folded, once per distinct value."""
        raw = column.combine_chunks().cast(pa.large_string())
        if len(raw) and pc.all(pc.string_is_ascii(raw)).as_py():
            codes = self._known.positions(pc.ascii_lower(raw))
            rest = np.flatnonzero(codes < 0)
        else:
            codes, rest = np.empty(len(raw), dtype=np.int64), np.arange(len(raw))
        if len(rest):
            codes[rest] = self._cleaned_key_codes(raw.take(pa.array(rest)))
        return codes

    def _cleaned_key_codes(self, column: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(column)
        keys = casefold(clean_text(_text_series(encoded.dictionary), self.missing))
        code_of = self._known.positions(arrow_text(keys))
        code_of[code_of < 0] = -2
        code_of[keys.isna().to_numpy(dtype=bool)] = -1
        return _spread(code_of, encoded.indices)

    def _bad_rows(self, table: pa.Table, start: int, positions: np.ndarray, rule: int) -> pd.DataFrame:
        """The quarantine rows of one rule in one chunk ("line" holds the row number for now)."""
        spec, column = self.spec, self.spec.timestamp.column
        raw = _text_frame(table.take(pa.array(positions)), positions + start)
        reason: str | Reasons
        if rule == self.MISSING_TYPE:
            column, reason = spec.type, f"missing {spec.type}"
        elif rule == self.MISSING_KEY:
            column, reason = spec.key, f"missing {spec.key}"
        elif rule == self.UNKNOWN_KEY:
            column = spec.key
            reason = lambda bad: f"{spec.key} '" + bad[spec.key].astype(str) + f"' not found in {spec.table}"  # noqa: E731
        elif rule == self.UNREADABLE_TIME:
            fmt = spec.timestamp.format
            reason = lambda bad: "unparseable date '" + bad[column].astype(str) + f"' (expected {fmt})"  # noqa: E731
        else:
            reason = f"missing {column}"
        return _quarantine_rows(self.name, raw, column=column, reason=reason, report=self.report)

    @property
    def key_ids(self) -> pd.Index:
        """The ids the key codes point into."""
        return self._known_ids

    @property
    def type_names(self) -> pd.Index:
        """The event types the type codes point into, in the order met."""
        return pd.Index(pd.array(list(self._types), dtype="string"))

    def frame(self) -> pd.DataFrame:
        """The kept rows in memory: key and type as categoricals over the known ids and the types met,
        and the time. The ingest stage never builds it: it writes the log from the spill."""
        parts = list(self.spill.kept_slices())

        def joined(name: str, dtype: type) -> np.ndarray:
            return np.concatenate([p[name] for p in parts]) if parts else np.array([], dtype=dtype)
        return pd.DataFrame({
            "event_key": pd.Categorical.from_codes(joined("key", np.int32), categories=self._known_ids),
            "event_type": pd.Categorical.from_codes(joined("type", np.int16), categories=self.type_names),
            "timestamp": joined("time", np.int64).view("datetime64[us]"),
        })

    def _reader(self) -> TableReader:
        return TableReader(self.path, label="events", delimiter=self.spec.delimiter, encoding=self.spec.encoding,
                           blanks_null=False, folders=False, text=True)

    @staticmethod
    def _chunks(reader: TableReader) -> Iterator[tuple[int, pa.Table]]:
        """The file's rows as Arrow text tables, a chunk at a time, with the row number each starts at."""
        start = 0
        for table in reader.tables(EVENT_CHUNK_ROWS):
            yield start, table
            start += table.num_rows

    def _lines_at(self, rows: np.ndarray) -> np.ndarray:
        """The file line of each row number (header = line 1), skipping the malformed lines."""
        bad = self._malformed_lines
        before = bad - 2 - np.arange(len(bad))  # rows read before each malformed line
        return rows + 2 + np.searchsorted(before, rows, side="right")

    def quarantine_after(self, clock: ExportClock, *, column: str, reason: Reasons) -> int:
        """Quarantine the kept rows dated from the clock's instant on (as :func:`after` says), reading
        their raw text again from the file; the number of rows."""
        instant = int(np.datetime64(pd.Timestamp(clock.instant).to_datetime64(), "us").astype(np.int64))
        late = [start + np.flatnonzero(part["time"] >= instant) for start, part in self.spill.slices()]
        positions = np.setdiff1d(np.concatenate(late) if late else np.array([], np.int64), self.spill.removed)
        if not len(positions):
            return 0
        checked = self._checked_out
        wanted = positions + np.searchsorted(checked - np.arange(len(checked)), positions, side="right")
        parts = []
        for start, table in self._chunks(self._reader()):
            lo, hi = np.searchsorted(wanted, [start, start + table.num_rows])
            if hi > lo:
                parts.append(_text_frame(table.take(pa.array(wanted[lo:hi] - start)), wanted[lo:hi]))
        raw = pd.concat(parts)
        raw.index = pd.Index(self._lines_at(raw.index.to_numpy()))
        self._bad.append(_quarantine_rows(self.name, raw, column=column, reason=reason, report=self.report))
        self.spill.remove(positions)
        return len(positions)

    def finish(self) -> list[pd.DataFrame]:
        return _finish(self.name, self.spill.kept, self._bad, self.report)


def _in_parallel(check: Callable[[pa.Table], Any], chunks: Iterator[tuple[int, pa.Table]]
                 ) -> Iterator[tuple[int, pa.Table, Any]]:
    """``check`` of each chunk, in order, two chunks at a time on threads (Arrow, numpy and the
    compiled passes release the GIL), while the next chunk is read: at most three chunks are held."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="events") as pool:
        pending: deque[tuple[int, pa.Table, Future[Any]]] = deque()
        for start, table in chunks:
            pending.append((start, table, pool.submit(check, table)))
            if len(pending) == 2:
                start_, table_, done = pending.popleft()
                yield start_, table_, done.result()
        while pending:
            start_, table_, done = pending.popleft()
            yield start_, table_, done.result()


def _spread(code_of: np.ndarray, indices: pa.Array) -> np.ndarray:
    """Per row, the code of its dictionary entry (``code_of``); a missing entry takes ``code_of``'s -1."""
    positions = pc.fill_null(indices, -1).to_numpy(zero_copy_only=False)
    return np.append(code_of, -1)[positions]


def _text_series(array: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow text as a pandas text series (Arrow-backed, no copy of the values)."""
    return pd.Series(pd.array(array.cast(pa.large_string()), dtype=pd.StringDtype("pyarrow")))


def _text_frame(table: pa.Table, index: np.ndarray) -> pd.DataFrame:
    """Raw rows of an Arrow text table as read_table frames them, indexed by ``index``."""
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    frame.index = pd.Index(index)
    return frame


def _quarantine_rows(name: str, raw: pd.DataFrame, *, column: str, reason: str | Reasons,
                     report: TableReport) -> pd.DataFrame:
    """Raw rows (indexed by file line) as quarantine rows, each with its reason (a text, or a function
    wording it per row) and its raw row as JSON; the reasons are counted in ``report``."""
    reasons = pd.Series(reason, index=raw.index) if isinstance(reason, str) else reason(raw)
    for r, count in reason_kinds(reasons).items():
        report.reasons[f"{column}: {r}"] += int(count)
    return pd.DataFrame({
        "table": name,
        "line": raw.index.to_numpy(),
        "column": column,
        "reason": reasons.astype(str).to_numpy(),
        "record": json_records(raw),
    })


def _finish(name: str, kept: int, bad: list[pd.DataFrame], report: TableReport) -> list[pd.DataFrame]:
    """The quarantined rows, once every row read is kept (``kept`` of them) or quarantined."""
    report.rows_kept = kept
    report.rows_quarantined = sum(len(b) for b in bad)
    if report.rows_kept + report.rows_quarantined != report.rows_read:
        raise AssertionError(f"{name}: {report.rows_read} rows read but {report.rows_kept} "
                             f"kept + {report.rows_quarantined} quarantined; rows were lost")
    return bad


def _malformed(skipped: list[Any], *, name: str) -> pd.DataFrame:
    """The lines a reader skipped, as quarantine rows."""
    return pd.DataFrame({
        "table": name,
        "line": [m.line for m in skipped],
        "column": "(row)",
        "reason": [m.reason for m in skipped],
        "record": [json.dumps({"text": m.text[:2000]}, ensure_ascii=False) for m in skipped],
    }, columns=QUARANTINE_COLUMNS)


def _file_lines(reader: TableReader, rows: int) -> np.ndarray:
    """The file line of each of ``rows`` rows read (header = line 1), skipping the malformed lines."""
    if reader.format == "parquet":
        return np.arange(2, rows + 2)
    skipped = reader.malformed
    bad_lines = np.array(sorted(m.line for m in skipped if m.line is not None), dtype=np.int64)
    lines = np.arange(2, rows + len(skipped) + 2)
    if len(bad_lines):
        lines = np.setdiff1d(lines, bad_lines, assume_unique=True)
    return lines[:rows]


def _join_index(parent_keys: pd.Series, child: pd.DataFrame, aliases: dict[str, str]) -> np.ndarray:
    """Position in ``child`` of each parent key (folded, aliased), or -1 where there is no match."""
    keys = apply_aliases(parent_keys, aliases) if aliases else parent_keys
    found = pc.index_in(arrow_text(keys), value_set=arrow_text(child["_id"]), skip_nulls=True)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _required(source: SourceParams) -> dict[str, list[str]]:
    """Columns each table must have: ids, outcome, dates, declared fields, and join columns."""
    primary = source.primary
    assert primary is not None
    need: dict[str, list[str]] = {"primary": [primary.outcome.column]}
    if primary.id:
        need["primary"].append(primary.id)
    for d in (primary.decision_date, primary.created_date):
        if d is not None:
            need["primary"].append(d.column)
    need["primary"] += [c.column for c in primary.columns.values()]
    for name, lookup in source.lookups.items():
        need.setdefault(name, []).extend([lookup.id, *(c.column for c in lookup.columns.values())])
    for lookup in source.lookups.values():
        need.setdefault(lookup.join.table, []).append(lookup.join.column)
    if source.events is not None:
        e = source.events
        need["events"] = [e.key, e.type, e.timestamp.column]
        if e.table == "primary" and primary.id is None:
            raise DataError("source.events.table is 'primary' but the primary table declares no id to key events by")
    for shown in source.display.fields.values():
        need.setdefault(shown.table, []).extend(shown.columns)
    return need


def ingest(source: SourceParams, *, for_training: bool = True, clock_at: ExportClock | None = None,
           work_dir: Path | None = None) -> IngestResult:
    """Read and validate the export described by ``source`` (kind synthetic reads the generator's export
    through its built-in mapping). ``for_training`` requires won and lost rows; an export read for
    scoring (open leads only, say) needs none. ``clock_at``: the export's clock, declared by the
    caller (``--scored-at``); by default ``source.clock`` (see :mod:`pipeline.data.clock`).
    ``work_dir``: where the checked activity log is held on disk until it is written (the stage
    gives its output folder; by default the system's temporary folder, which may be in memory)."""
    source = explicit_mapping(source)
    primary = source.primary
    assert primary is not None  # an explicit mapping always has one
    specs: dict[str, FileParams] = {"primary": primary, **source.lookups}
    if source.events is not None:
        specs["events"] = source.events
    need = _required(source)
    raw: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for name, spec in specs.items():
        if name == "events":  # read and checked a chunk at a time, below
            continue
        path = source.path(spec.file)
        frame, malformed = read_table(path, spec=spec, name=name)
        require_columns(frame, need.get(name, []), name=name, path=path, delimiter=spec.delimiter)
        used = set(need.get(name, []))
        ignored = [c for c in frame.columns if c not in used]
        if ignored:
            log.info("%s: ignoring %d undeclared column(s): %s", path.name, len(ignored), ", ".join(ignored[:20]))
        raw[name] = (frame, malformed)
        log.info("read %s: %d rows (%d malformed lines)", path, len(frame), len(malformed))

    infos = {name: field_infos(name, spec) for name, spec in {"primary": primary, **source.lookups}.items()}

    def checked(name: str) -> _Table:
        if name == "primary":
            return _primary(*raw["primary"], source, infos["primary"])
        return _lookup(name, *raw[name], source.lookups[name], source, infos[name])

    # The activity log needs only the ids of the table it attaches to: that table is checked first,
    # and the log is read on a thread while the other tables are checked.
    names = ["primary", *source.lookups]
    checked_tables: dict[str, _Table] = {}
    activity: _StreamedEvents | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="activity") as pool:
        reading: Future[_StreamedEvents] | None = None
        if source.events is not None:
            events_spec = source.events
            checked_tables[events_spec.table] = checked(events_spec.table)
            known = pd.Index(checked_tables[events_spec.table].frame["_id"].dropna().unique())
            reading = pool.submit(_StreamedEvents, source.path(events_spec.file), events_spec, source, known,
                                  folder=work_dir)
        for name in names:
            if name not in checked_tables:
                checked_tables[name] = checked(name)
        tables = {name: checked_tables[name] for name in names}
        checked_tables.clear()  # ``tables`` holds them, until the display columns are built
        # While the log is still being read: the display columns of every primary row kept so far. The
        # export's clock may set rows aside later; the display of the rest is taken from these.
        shown = tables["primary"].positions()
        record_ids = tables["primary"].frame["record_id"].reset_index(drop=True)
        display = _display(tables, source, _row_positions(tables, source), record_ids)
        activity = reading.result() if reading is not None else None
    raw.clear()  # each table holds its own
    return_freed_memory()  # the activity log's chunks
    clock = _clock(tables, source, declared=clock_at, activity=activity)
    later = _raw_read_later(source)
    for name, checked_table in tables.items():  # the last rule has run
        checked_table.keep_raw({c for table, c in later if table == name})
    return_freed_memory()

    positions = _row_positions(tables, source)  # where each primary row lands in every lookup
    records, report_notes = _denormalise(tables, source, positions)
    if source.events is not None:
        e = source.events
        records["event_key"] = _key_per_row(tables, e.table, positions)
    else:
        records["event_key"] = pd.Series(pd.NA, index=records.index, dtype="string")
    event_accounts = None
    if source.account is not None:
        records["account_key"] = _key_per_row(tables, source.account, positions)
        if source.events is not None:
            event_accounts = pd.DataFrame({
                "event_key": tables[source.events.table].frame["_id"].reset_index(drop=True).astype("string"),
                "account_key": _key_per_row(tables, source.account,
                                            _row_positions(tables, source, root=source.events.table)),
            })
    else:
        records["account_key"] = pd.Series(pd.NA, index=records.index, dtype="string")

    bad: list[pd.DataFrame] = []
    report: dict[str, TableReport] = {}
    finishing: list[tuple[str, _Table | _StreamedEvents]] = [*tables.items()]
    if activity is not None:
        finishing.append(("events", activity))
    for name, t in finishing:
        bad.extend(t.finish())
        report[name] = t.report
    report["primary"].notes.extend(report_notes)
    quarantine = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    all_infos = [replace(i, spellings=tables[name].spellings.get(i.name)) for name, group in infos.items()
                 for i in group]
    records = records[RECORD_KEYS + [i.name for i in all_infos]].reset_index(drop=True)
    kept = np.searchsorted(shown, tables["primary"].positions())  # the display rows of the records
    if len(kept) != len(display):
        display = display.take(kept).reset_index(drop=True)
    tables.clear()  # the raw and checked tables: nothing reads them now
    return_freed_memory()
    result = IngestResult(records=records, activity=activity, fields=all_infos, quarantine=quarantine, report=report,
                          event_accounts=event_accounts, mapping=source, display=display, clock=clock)
    _require_rows(result, column=primary.outcome.column, for_training=for_training)
    record_schema(all_infos).validate(records, inplace=True)
    return result


def _raw_read_later(source: SourceParams) -> set[tuple[str, str]]:
    """The (table, column) raw texts read after the rules: join keys and display columns."""
    later = {(spec.join.table, spec.join.column) for spec in source.lookups.values()}
    return later | {(shown.table, column) for shown in source.display.fields.values() for column in shown.columns}


def _clock(tables: dict[str, _Table], source: SourceParams, *, declared: ExportClock | None,
           activity: _StreamedEvents | None = None) -> ExportClock | None:
    """The export's clock (declared, or found by the rule of ``source.clock``); rows dated after it
    are quarantined: a lead created, a deal closed or an event logged after the export was taken."""
    primary = source.primary
    assert primary is not None
    dated: list[tuple[_Table, str, str]] = []  # table, parsed column, export column
    for name, spec in (("created_date", primary.created_date), ("decision_date", primary.decision_date)):
        if spec is not None:
            dated.append((tables["primary"], name, spec.column))
    logged = activity if source.events is not None else None  # the log's times are counted as it is read
    dates: list[pd.Series | DateCounts] = [t.frame[name] for t, name, _ in dated]
    clock = declared or export_clock(dates + ([logged.spill.dates()] if logged is not None else []),
                                     params=source.clock)
    if clock is None:
        return None
    where = "source.clock" if declared is None else clock.rule
    set_aside = 0

    def future(column: str) -> Reasons:
        return lambda bad: f"{column} '" + bad[column].astype(str).str.strip() + \
            f"' is after the export's date {clock.day} ({where})"

    for t, name, column in dated:
        late = after(t.frame[name], clock)
        set_aside += int(late.sum())
        t.quarantine(late, column=column, reason=future(column))
    if logged is not None and source.events is not None:
        column = source.events.timestamp.column
        set_aside += logged.quarantine_after(clock, column=column, reason=future(column))
    log.info("the export's date: %s (%s)", clock.day, clock.rule)
    if set_aside:
        log.warning("%d row(s) dated after the export's date %s quarantined (the latest: %s)", set_aside,
                    clock.day, clock.latest_seen)
    return clock


def _display(tables: dict[str, _Table], source: SourceParams, positions: dict[str, np.ndarray],
             record_id: pd.Series) -> pd.DataFrame:
    """The display-only columns of each kept record, in the CRM's own spelling (trimmed, never folded):
    several columns of one field are joined by a space. Only record_id when the mapping declares none."""
    display = source.display
    out = pd.DataFrame({"record_id": record_id.astype("string")})
    for key in [k for k in DISPLAY_COLUMNS if k in display.fields]:  # one column order, whatever the mapping's
        shown = display.fields[key]
        t, pos = tables[shown.table], positions.get(shown.table)
        parts = []
        for column in shown.columns:
            text = clean_text(t.rows(column), t.missing).reset_index(drop=True)
            if pos is None or not len(text):
                parts.append(pd.Series(pd.NA, index=out.index, dtype="string"))
                continue
            parts.append(take_text(arrow_text(text), pos))
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.str.cat(part, sep=" ", na_rep="").str.strip().replace("", pd.NA)
        out[DISPLAY_COLUMNS[key]] = joined.astype("string")
    if display.link is not None:
        out[DISPLAY_COLUMNS["link"]] = _links(display.link, out["record_id"])
    return out


def _links(template: str, record_ids: pd.Series) -> pd.Series:
    """``template`` with each record's id, URL-quoted, for ``{record_id}``. Ids of URL-safe characters
    only (most CRM ids) are their own quoting, so only the others go through :func:`urllib.parse.quote`."""
    ids = record_ids.astype("string")
    pieces = template.split("{record_id}")
    if len(pieces) == 1:
        return pd.Series(template, index=ids.index, dtype="string")
    plain = ids.str.fullmatch(r"[A-Za-z0-9_.~-]*").fillna(False).to_numpy(dtype=bool)
    quoted = ids
    if not plain.all():
        quoted = ids.copy()
        quoted[~plain] = [quote(str(r), safe="") for r in ids[~plain]]
    texts: list[Any] = [pa.scalar(pieces[0], pa.large_string())]
    for piece in pieces[1:]:
        texts += [arrow_text(quoted), pa.scalar(piece, pa.large_string())]
    joined = pc.binary_join_element_wise(*texts, pa.scalar("", pa.large_string()))  # one pass, no step in between
    return pd.Series(pd.array(joined, dtype=pd.StringDtype("pyarrow")), index=ids.index)


def _row_positions(tables: dict[str, _Table], source: SourceParams, root: str = "primary") -> dict[str, np.ndarray]:
    """For every table reachable from ``root`` by joins, the row (position in its clean frame) that each
    ``root`` row joins to, or -1."""
    positions = {root: np.arange(len(tables[root].frame))}
    pending = {name: spec for name, spec in source.lookups.items() if name != root}
    while pending:
        ready = [name for name, spec in pending.items() if spec.join.table in positions]
        if not ready:
            break
        for name in ready:
            spec = pending[name]
            parent = spec.join.table
            parent_rows = positions[parent]
            parent_keys = on_uniques(tables[parent].rows(spec.join.column)
                                      .pipe(clean_text, tables[parent].missing), casefold)
            child_pos = _join_index(parent_keys.reset_index(drop=True), tables[name].frame, spec.join.aliases)
            joined = np.where(parent_rows >= 0, child_pos[np.maximum(parent_rows, 0)], -1)
            positions[name] = joined
            del pending[name]
    return positions


def _denormalise(tables: dict[str, _Table], source: SourceParams,
                 positions: dict[str, np.ndarray]) -> tuple[pd.DataFrame, list[str]]:
    """One frame per primary row with every lookup's fields joined on."""
    primary = tables["primary"].frame
    records = primary.drop(columns=[c for c in ("_id", "_id_text") if c in primary.columns]).reset_index(drop=True)
    notes = []
    for name, spec in source.lookups.items():
        pos = positions[name]
        frame = tables[name].frame.reset_index(drop=True)
        unmatched = int((pos < 0).sum())
        if unmatched:
            notes.append(f"{unmatched} of {len(pos)} rows have no match in {name} (by {spec.join.column}); "
                         f"their {name} fields are missing")
        for info in field_infos(name, spec):
            records[info.name] = _joined(frame[info.name], pos)
    return records, notes


def _joined(values: pd.Series, pos: np.ndarray) -> pd.Series:
    """``values`` at ``pos``, missing where ``pos`` is -1. Extension arrays (text, categories, nullable
    numbers) are taken as they are; numpy columns go through numpy, missing as ``mask`` makes it."""
    if len(values) and isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return pd.Series(values.array.take(pos, allow_fill=True))
    column = pd.Series(values.to_numpy()[np.maximum(pos, 0)], dtype=values.dtype) if len(values) else \
        pd.Series([None] * len(pos), dtype=values.dtype)
    return column.mask(pos < 0)


def _key_per_row(tables: dict[str, _Table], table: str, positions: dict[str, np.ndarray]) -> pd.Series:
    """The (folded) id in ``table`` that each row of the positions' root joins to, or NA."""
    root_rows = len(next(iter(positions.values())))
    pos = positions.get(table)
    if pos is None:
        return pd.Series(pd.NA, index=range(root_rows), dtype="string")
    return take_text(arrow_text(tables[table].frame["_id"]), pos)


class IngestFailed(DataError):
    """No usable rows: the export as far as it was read, so that its quarantine and report can still
    be written and the reason seen."""

    def __init__(self, message: str, *, result: IngestResult) -> None:
        super().__init__(message)
        self.result = result


_HINTS = {  # a reason kind -> what to check when it is why a whole file was lost
    "unparseable date": "check the date formats declared in source (e.g. format: '%m/%d/%Y')",
    "malformed line": "check the delimiter, the quoting, and whether every line ends with an extra delimiter",
    "maps to no outcome": "check the won/lost values mapped for {column}",
    "after the export's date": "check the export's date (declare it as source.clock.export_date)",
    "not found in": "check the join columns and their aliases",
}
TOP_REASONS = 3


def top_reasons(report: TableReport, *, column: str) -> str:
    """The most frequent quarantine reasons of a table with their counts, and what to check for them."""
    top = report.reasons.most_common(TOP_REASONS)
    if not top:
        return ""
    listed = "; ".join(f"{reason} ({count:,} row{'s' if count != 1 else ''})" for reason, count in top)
    hints = [hint.format(column=column) for key, hint in _HINTS.items() if any(key in r for r, _ in top)]
    return f" The top quarantine reasons: {listed}." + (f" To fix: {'; '.join(hints)}." if hints else "")


def _require_rows(result: IngestResult, *, column: str, for_training: bool) -> None:
    """Stop when no row survived validation, or (for training) no won or no lost one did, naming the
    reasons the rows were quarantined for."""
    report = result.report["primary"]
    counts = result.records["outcome"].value_counts()
    found = ", ".join(f"{k}: {v}" for k, v in counts.items()) or "no rows"
    why = top_reasons(report, column=column)
    lost = f" {report.rows_read - len(result.records):,} of {report.rows_read:,} rows were quarantined." if why else ""
    if report.rows_read and not len(result.records):
        raise IngestFailed(f"primary: every row was quarantined ({report.rows_read:,} read, none kept).{why}",
                           result=result)
    for outcome in (OUTCOME_WON, OUTCOME_LOST) if for_training else ():
        if counts.get(outcome, 0) == 0:
            check = "" if "maps to no outcome" in why else f" Check the won/lost values mapped for {column}."
            raise IngestFailed(f"primary: no {outcome} rows after validation ({found}); a model needs both won "
                               f"and lost outcomes.{check}{lost}{why}", result=result)


# ---------------------------------------------------------------- output contract (pandera)

_KIND_DTYPE = {"numeric": "float64", "boolean": "float64", "date": "datetime64[us]",
               "categorical": "string", "text": "string"}


def record_schema(infos: list[FieldInfo]) -> pa_schema.DataFrameSchema:
    """The contract of the records table, built from the mapping's fields."""
    columns: dict[str, pa_schema.Column] = {
        "record_id": pa_schema.Column("string", nullable=False, unique=True),
        "outcome": pa_schema.Column("string", pa_schema.Check.isin([OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN]),
                                    nullable=False),
        "decision_date": pa_schema.Column("datetime64[us]", nullable=True),
        "created_date": pa_schema.Column("datetime64[us]", nullable=True),
        "event_key": pa_schema.Column("string", nullable=True),
        "account_key": pa_schema.Column("string", nullable=True),
    }
    for info in infos:
        columns[info.name] = pa_schema.Column(_KIND_DTYPE[info.kind], nullable=True)
    return pa_schema.DataFrameSchema(columns, strict=True, ordered=True, coerce=False)


# Keys and types repeat millions of times: they are categoricals, and the type names are checked once each.
EVENTS_SCHEMA = pa_schema.DataFrameSchema({
    # Checked as categorical by a check, not a dtype: pandera copies a categorical dtype's categories
    # into a tuple one by one, a million keys (1.5 s) at a million leads.
    "event_key": pa_schema.Column(None, pa_schema.Check(lambda s: isinstance(s.dtype, pd.CategoricalDtype),
                                                        error="event keys are categorical"), nullable=False),
    "event_type": pa_schema.Column("category", pa_schema.Check(
        lambda s: bool(s.cat.categories.astype("string").str.fullmatch(r"[0-9a-z_]+").all()),
        error="event types are snake_case"), nullable=False),
    "timestamp": pa_schema.Column("datetime64[us]", nullable=False),
}, strict=True, ordered=True)


# ---------------------------------------------------------------- stage

EVENTS_ROW_GROUP_ROWS = 4 << 20


def _used(column: pd.Series) -> pd.Series:
    """The distinct values a key column holds, as text: a categorical's used categories (not its rows)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        used = np.zeros(len(column.cat.categories) + 1, dtype=bool)
        used[codes] = True  # a missing value's -1 marks the extra last slot
        return pd.Series(column.cat.categories[used[:-1]], dtype="string")
    return column.dropna().astype("string")


def _shared_dictionary(values: list[pd.Series]) -> _Dictionary:
    """The distinct values of several key columns (each given by its distinct values), sorted: one
    dictionary for all of them."""
    return _Dictionary(pd.Index(pd.concat(values, ignore_index=True).unique()).sort_values())


class _Dictionary:
    """Categories to encode columns over: their dtype is built, and their texts hashed, once."""

    def __init__(self, categories: pd.Index) -> None:
        self.dtype = pd.CategoricalDtype(categories)
        self._lookup = TextLookup(arrow_text(categories.to_series()))

    def codes_of(self, values: pd.Index) -> np.ndarray:
        """The code of each of ``values`` among the categories (-1: not there)."""
        return self._lookup.positions(arrow_text(values.to_series())).astype(np.int32)

    def encode(self, column: pd.Series) -> pd.Series:
        """``column`` as a categorical over the categories (values outside them missing); a categorical's
        own categories are looked up, not its rows."""
        if isinstance(column.dtype, pd.CategoricalDtype):
            code_of = self._lookup.positions(arrow_text(column.cat.categories.to_series()))
            codes = np.append(code_of, -1)[column.cat.codes.to_numpy()]
        else:
            codes = self._lookup.positions(arrow_text(column))
        return pd.Series(pd.Categorical.from_codes(codes.astype(np.int32), dtype=self.dtype), index=column.index,
                         name=column.name)


def write_result(result: IngestResult, *, interim_dir: Path, report_path: Path) -> None:
    """The interim files. Keys repeat millions of times, so they are stored as dictionaries, and every
    file that holds event keys (records, events, the event -> account map) shares one dictionary, as
    do the files that hold account keys: the features stage then joins them on their codes, without
    hashing a million strings per join (it checks that the dictionaries are equal first). The files
    are written two at a time: Parquet encoding and compression run outside the GIL."""
    return_freed_memory()  # what reading the export left
    interim_dir.mkdir(parents=True, exist_ok=True)
    records, activity, event_accounts = result.records, result.activity, result.event_accounts
    logged_keys = [pd.Series(activity.key_ids[activity.spill.used_keys()], dtype="string")] if activity else []
    key_columns = [_used(records["event_key"]), *logged_keys] + \
        ([_used(event_accounts["event_key"])] if event_accounts is not None else [])
    keys = _shared_dictionary(key_columns)
    account_columns = [records["account_key"]] + ([event_accounts["account_key"]] if event_accounts is not None else [])
    accounts = _shared_dictionary([_used(c) for c in account_columns])
    events_path, accounts_path = interim_dir / EVENTS_FILE, interim_dir / EVENT_ACCOUNTS_FILE

    def coded(part: pd.DataFrame) -> pd.DataFrame:  # keys as codes into the shared dictionaries
        return part.assign(event_key=keys.encode(part["event_key"]), account_key=accounts.encode(part["account_key"]))

    def write_records() -> None:  # a slice at a time: no Arrow copy of every record
        with atomic_path(interim_dir / RECORDS_FILE) as tmp:
            write_parquet(map(coded, _slices(records)), tmp)

    def write_events() -> None:
        if activity is None:
            events_path.unlink(missing_ok=True)
            return
        with atomic_path(events_path) as tmp:
            write_events_file(activity, keys, tmp)

    def write_accounts() -> None:
        if event_accounts is None:
            accounts_path.unlink(missing_ok=True)
            return
        with atomic_path(accounts_path) as tmp:
            write_parquet(map(coded, _slices(event_accounts)), tmp)

    def write_display() -> None:  # always written: the score stage's DVC dependency
        display = result.display if result.display is not None else records[["record_id"]]
        with atomic_path(interim_dir / DISPLAY_FILE) as tmp:
            write_parquet(_slices(display), tmp)

    def write_rest() -> None:
        write_json(interim_dir / FIELDS_FILE, [f.as_dict() for f in result.fields])
        if result.mapping is not None:  # the folder is where this export was; the mapping is how to read one
            write_json(interim_dir / MAPPING_FILE, result.mapping.model_dump(mode="json", exclude={"dir"}))
        clock_path = interim_dir / CLOCK_FILE
        if result.clock is not None:
            write_json(clock_path, result.clock.as_dict())
        else:
            clock_path.unlink(missing_ok=True)
        write_reports(result, interim_dir=interim_dir, report_path=report_path)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="write") as pool:  # the largest first
        for done in [pool.submit(job) for job in (write_events, write_records, write_display, write_accounts,
                                                  write_rest)]:
            done.result()


def write_events_file(activity: _StreamedEvents, keys: _Dictionary, path: Path) -> None:
    """The activity log's kept rows as Parquet, written a row group at a time from the spill: the
    same bytes as pandas writing the whole frame with ``row_group_size=EVENTS_ROW_GROUP_ROWS``. Keys
    are coded over the shared dictionary ``keys``, types over the types kept, sorted.

    Each row group repeats the whole key dictionary, so row groups are 4Mi rows (about 50 MB at 1M
    leads, within Parquet's advice of 128 MB to 1 GB) rather than pyarrow's 1Mi: at 20M events that is
    5 copies of the dictionary to decode instead of 19, and still 5 groups to read in parallel."""
    kept_types = activity.type_names[activity.spill.used_types()]
    types = _Dictionary(pd.Index(kept_types.sort_values()))
    key_code = keys.codes_of(activity.key_ids)      # known id's code -> its code in the shared dictionary
    type_code = types.codes_of(activity.type_names)  # type met's code -> its code among the kept, sorted

    def frames() -> Iterator[pd.DataFrame]:
        for part in regrouped(activity.spill.kept_slices(), EVENTS_ROW_GROUP_ROWS):
            frame = pd.DataFrame({
                "event_key": pd.Categorical.from_codes(key_code[part["key"]], dtype=keys.dtype),
                "event_type": pd.Categorical.from_codes(type_code[part["type"]], dtype=types.dtype),
                "timestamp": part["time"].view("datetime64[us]"),
            })
            yield EVENTS_SCHEMA.validate(frame, inplace=True)
    write_parquet(frames(), path, rows=EVENTS_ROW_GROUP_ROWS)


PARQUET_ROW_GROUP_ROWS = 1 << 20  # pyarrow's default: a frame written in slices of it has one write's bytes


def _slices(frame: pd.DataFrame, rows: int = PARQUET_ROW_GROUP_ROWS) -> Iterator[pd.DataFrame]:
    """``frame`` ``rows`` rows at a time (one empty slice when it has none)."""
    for start in range(0, max(len(frame), 1), rows):
        yield frame.iloc[start:start + rows]


def write_parquet(frames: Iterator[pd.DataFrame], path: Path, *, rows: int = PARQUET_ROW_GROUP_ROWS) -> None:
    """Consecutive pieces of one table as Parquet, a piece at a time: the bytes of pandas writing their
    concatenation at once with ``row_group_size=rows`` when every piece but the last has ``rows`` rows
    (the same schema and pandas metadata, the same row groups), without an Arrow copy of the whole."""
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=rows)
    finally:
        if writer is not None:
            writer.close()


def write_reports(result: IngestResult, *, interim_dir: Path, report_path: Path) -> None:
    """The quarantine and the ingest report: written by a run that failed too, so its reasons can be read."""
    interim_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(interim_dir / QUARANTINE_FILE) as tmp:
        spreadsheet_safe(result.quarantine).to_csv(tmp, index=False)  # raw CRM text: never a live formula
    detail: dict[str, Any] = {name: r.as_dict() for name, r in result.report.items()}
    clock = result.clock.as_dict() if result.clock is not None else None
    write_json(interim_dir / INGEST_REPORT_FILE, {**detail, "clock": clock})
    # The DVC metric holds the counts only, so `dvc metrics show` stays readable.
    counts = ("rows_read", "rows_kept", "rows_quarantined")
    metric: dict[str, Any] = {name: {k: r[k] for k in counts} for name, r in detail.items()}
    metric["total"] = {k: sum(r[k] for r in detail.values()) for k in counts}
    report_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(report_path, metric)


def write_failure(result: IngestResult, *, interim_dir: Path, report_path: Path) -> None:
    """A run that kept no usable rows: its quarantine and report, and no tables a later stage could
    mistake for this export's (a previous run's are removed)."""
    for name in (RECORDS_FILE, EVENTS_FILE, EVENT_ACCOUNTS_FILE, DISPLAY_FILE, FIELDS_FILE, MAPPING_FILE, CLOCK_FILE):
        (interim_dir / name).unlink(missing_ok=True)
    write_reports(result, interim_dir=interim_dir, report_path=report_path)
