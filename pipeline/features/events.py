"""The activity log as flat arrays: each event's key code, type code and time, part by part.

At 1M leads the log holds about 20M events. As a pandas frame it costs a copy of every column and
a merge of every row group's key dictionary (a million keys hashed per row group) before any
feature is computed. Read here, each Parquet row group becomes one :class:`EventPart` whose arrays
are views of what pyarrow decoded, and the row groups that ingest writes share one key
dictionary, so merging them is one comparison per row group. A row group with a dictionary of its
own (a file written by another tool) is mapped onto the log's distinct values instead.

A code of -1 means missing: an event without a key or without a timestamp belongs to no record,
and one without a type counts as "any other type".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import DataError

COLUMNS = ("event_key", "event_type", "timestamp")


@dataclass(frozen=True)
class EventPart:
    """A run of events: codes into :attr:`EventLog.keys` and :attr:`EventLog.types` (-1: missing),
    and times in microseconds since 1970."""

    key: np.ndarray
    kind: np.ndarray
    micros: np.ndarray

    def __len__(self) -> int:
        return len(self.key)


@dataclass(frozen=True)
class EventLog:
    """Every event of an export: its distinct keys and types, and the events in parts."""

    keys: pa.Array   # distinct event keys (large_string), in code order
    types: pa.Array  # distinct event types (large_string), in code order
    parts: tuple[EventPart, ...]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def latest(self) -> pd.Timestamp | None:
        """The latest event time (None for an empty log)."""
        known = [int(p.micros[p.key >= 0].max()) for p in self.parts if (p.key >= 0).any()]
        return pd.Timestamp(max(known), unit="us") if known else None

    def type_counts(self) -> dict[str, int]:
        """Events per type, missing types left out."""
        tally = np.zeros(len(self.types) + 1, dtype=np.int64)  # the first: missing (code -1)
        for part in self.parts:
            for at in range(0, len(part), 1 << 22):  # bincount copies to intp: in runs, the copy stays small
                tally += np.bincount(part.kind[at:at + (1 << 22)].astype(np.intp) + 1, minlength=len(tally))
        return dict(zip(self.types.to_pylist(), tally[1:].tolist(), strict=True))

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> EventLog:
        """The log of an ``event_key`` / ``event_type`` / ``timestamp`` frame (as ingest returns it)."""
        _require_columns(events.columns, where="the events")
        key_codes, keys = encode(events["event_key"])
        type_codes, types = encode(events["event_type"])
        stamps = pd.to_datetime(events["timestamp"])
        micros = stamps.to_numpy(dtype="datetime64[us]").view(np.int64)
        key_codes = np.where(stamps.isna().to_numpy(), -1, key_codes)
        return cls(keys, types, (EventPart(key_codes, type_codes, micros),))

    @classmethod
    def read(cls, path: Path) -> EventLog:
        """The log in an events Parquet file as ingest writes it, one part per row group."""
        file = open_events(path)
        keys, types = Dictionary(), Dictionary()
        parts = []
        for group in range(file.metadata.num_row_groups):
            try:
                table = file.read_row_group(group, columns=list(COLUMNS))
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"{path}: row group {group} cannot be read ({exc}); run `leadscore ingest` "
                                "again") from None
            for key, kind, stamp in zip(*(table.column(c).chunks for c in COLUMNS), strict=True):
                micros = micros_of(stamp)
                key_codes = keys.codes(key)
                if stamp.null_count:
                    key_codes = np.where(stamp.is_null().to_numpy(zero_copy_only=False), -1, key_codes)
                parts.append(EventPart(key_codes, types.codes(kind), micros))
        return cls(keys.values(), types.values(), tuple(parts))


class PendingEventLog:
    """An activity log being read on a thread of its own, and what its file tells before that: the
    number of events, and the latest event time (from the file's column statistics, when it has
    them). Meanwhile the caller can build everything that needs only the records."""

    def __init__(self, path: Path) -> None:
        file = open_events(path)
        self._rows = file.metadata.num_rows
        self._latest = latest_by_statistics(file)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events")
        self._log = pool.submit(EventLog.read, path)
        pool.shutdown(wait=False)  # the thread ends with the read

    def __len__(self) -> int:
        return self._rows

    def latest(self) -> pd.Timestamp | None:
        return self._latest if self._latest is not None else self.result().latest()

    def result(self) -> EventLog:
        """The log, once read (an error of the read is raised here)."""
        return self._log.result()


def open_events(path: Path) -> pq.ParquetFile:
    try:
        file = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering would keep every row group read
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    _require_columns(file.schema_arrow.names, where=str(path))
    return file


def latest_by_statistics(file: pq.ParquetFile) -> pd.Timestamp | None:
    """The latest event time from the row groups' statistics, or None when they cannot tell it
    exactly: statistics missing, or events without a key or a time (those do not count)."""
    names = file.schema_arrow.names
    key_at, stamp_at = names.index("event_key"), names.index("timestamp")
    if not pa.types.is_timestamp(file.schema_arrow.field("timestamp").type):
        return None
    latest = None
    for group in range(file.metadata.num_row_groups):
        meta = file.metadata.row_group(group)
        if not meta.num_rows:
            continue
        key, stamp = meta.column(key_at).statistics, meta.column(stamp_at).statistics
        if key is None or stamp is None or not stamp.has_min_max or key.null_count or stamp.null_count:
            return None
        value = pd.Timestamp(stamp.max)
        latest = value if latest is None or value > latest else latest
    return latest


def _require_columns(columns: object, *, where: str) -> None:
    missing = [c for c in COLUMNS if c not in list(columns)]  # type: ignore[call-overload]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; run `leadscore ingest` again")


def _strings(values: pa.Array) -> pa.Array:
    return values.cast(pa.large_string())


def arrow_strings(values: pd.Series | pd.Index) -> pa.Array:
    """A text column as one Arrow large_string array."""
    array = pa.array(values.astype("string"), type=pa.large_string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def encode(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """A column's codes (-1: missing) and its distinct values, hashing each distinct value once
    (free for a categorical: its codes and categories)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), arrow_strings(values.cat.categories)
    encoded = pc.dictionary_encode(arrow_strings(values))
    return np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)), encoded.dictionary


def micros_of(stamp: pa.Array) -> np.ndarray:
    if not pa.types.is_timestamp(stamp.type):
        raise DataError(f"the events' timestamp column is {stamp.type}, not a timestamp; run `leadscore ingest` again")
    values = stamp.cast(pa.timestamp("us")) if stamp.type.unit != "us" else stamp
    return values.fill_null(0).to_numpy(zero_copy_only=False).view(np.int64) if values.null_count \
        else values.to_numpy(zero_copy_only=False).view(np.int64)


class Dictionary:
    """The distinct values of a dictionary column read in pieces (row groups, batches), and each
    row's code into them. Pieces that repeat the first piece's dictionary (as every piece of an
    ingest file does) cost one comparison; others are merged, hashing their values."""

    def __init__(self) -> None:
        self._parts: list[pa.Array] = []     # the distinct values, in code order, as they were met
        self._first: pa.Array | None = None  # the first piece's dictionary, as read

    def values(self) -> pa.Array:
        """The distinct values (large_string)."""
        if not self._parts:
            return pa.array([], type=pa.large_string())
        return pa.concat_arrays(self._parts) if len(self._parts) > 1 else self._parts[0]

    def codes(self, column: pa.Array) -> np.ndarray:
        """Each row's code into :meth:`values` (-1: missing)."""
        if not isinstance(column, pa.DictionaryArray):
            column = pc.dictionary_encode(column)
        index_of = None
        if self._first is None:
            self._first = column.dictionary
            self._parts.append(_strings(column.dictionary))
        elif not column.dictionary.equals(self._first):
            index_of = self._merge(_strings(column.dictionary))
        indices = column.indices
        codes = (pc.fill_null(indices, -1) if indices.null_count else indices).to_numpy(zero_copy_only=False)
        return codes if index_of is None else np.append(index_of, -1)[codes]

    def chunked_codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """:meth:`codes` of every chunk, end to end."""
        codes = [self.codes(chunk) for chunk in column.chunks]
        return np.concatenate(codes) if len(codes) != 1 else codes[0]

    def _merge(self, dictionary: pa.Array) -> np.ndarray:
        """Codes of ``dictionary``'s values among the distinct values; values not met before are added."""
        known = self.values()
        found = pc.index_in(dictionary, value_set=known)
        new = dictionary.filter(pc.is_null(found))
        if len(new):
            new = pc.unique(new)
            self._parts.append(new)
            known = pa.concat_arrays([known, new])
            found = pc.index_in(dictionary, value_set=known)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
