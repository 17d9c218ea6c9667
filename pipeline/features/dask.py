"""The intent features on a Dask cluster, equal to the local engine's, for logs past one machine.

A LocalCluster on this machine by default, or an existing scheduler (``leadscore features
--engine dask --scheduler tcp://host:8786``); the workers need leadscore installed and the interim
files at the same path (a shared disk). Everything but the intent features is built on the
client as in the local engine: those are per record and cheap; the log is what is large.

The log stays on the workers. Each row group of the events file is read by one task and split
into ``n`` pieces twice: by the record key (a key's events all land in one piece of the same
number, for the records' own figures) and by the account the key belongs to (for the account
roll-ups). A key or an account is coded by its position among the records' distinct keys or
accounts, and its part is that position modulo ``n``: the client sends each part the records
(their codes and as-of seconds) whose key or account is in it, and gets back their figures.
Events whose key no record has, or whose account no record has, go nowhere.

A record's figures depend only on its key's events and its account's events
(:mod:`pipeline.features.intent`), and each part holds all of those, in the file's order: the
figures are the local engine's, bit for bit (``tests/features/test_dask_features.py``).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import DataError
from pipeline.features.events import COLUMNS, EventLog, EventPart, encode, latest_by_statistics, micros_of, open_events
from pipeline.features.intent import (
    AccountCodes,
    coded_intent,
    epoch_seconds,
    intent_specs,
    most_frequent,
    positions_in,
)
from pipeline.io.cluster import close_client, dask_client

log = logging.getLogger(__name__)

EVENTS_PER_PART = 4_000_000  # the parts: at least two per worker, and about this many events each
_LOOKUPS: dict[str, tuple[str, pa.Array, np.ndarray]] = {}  # per worker: the last key dictionary met, by route

# A piece of a row group: each event's local key (or account) code, its type code into the piece's
# type names, and its time in microseconds.
Piece = tuple[np.ndarray, np.ndarray, list[str], np.ndarray]


@dataclass(frozen=True)
class Lookup:
    """Where a route sends an event: the event key values and the position each maps to. ``token``
    is new for every run, so a worker of a long-lived cluster never reuses another run's lookups."""

    token: str
    values: pa.Array
    positions: np.ndarray


@dataclass(frozen=True)
class Records:
    """A part's records: their codes within the part and their as-of instants in seconds."""

    codes: np.ndarray
    as_of_s: np.ndarray


class DaskEvents:
    """The activity log left in its Parquet file for a Dask cluster: what the features ask of a log
    (its length, its latest time) and the intent features themselves (:meth:`activity`).
    Use it in a ``with`` block: the client (and a LocalCluster, if one is made) lives that long."""

    def __init__(self, path: Path, *, scheduler: str | None = None, workers: int | None = None,
                 partitions: int | None = None) -> None:
        file = open_events(path)
        self.path, self.scheduler, self.workers, self.partitions = path, scheduler, workers, partitions
        self._rows, self._groups = file.metadata.num_rows, file.metadata.num_row_groups
        self._latest = latest_by_statistics(file)
        self._client: Any = None

    def __enter__(self) -> DaskEvents:
        self._client = dask_client(self.scheduler, self.workers)
        info = self._client.scheduler_info()
        log.info("dask: %d worker(s) at %s for %d events in %d row group(s)", len(info.get("workers", {})),
                 info.get("address", "?"), self._rows, self._groups)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            close_client(self._client, scheduler=self.scheduler)
            self._client = None

    def __len__(self) -> int:
        return self._rows

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("DaskEvents is used outside its `with` block")
        return self._client

    def latest(self) -> pd.Timestamp | None:
        """The latest event time (of an event with a key): from the file's statistics, else read on the cluster."""
        if self._latest is None:
            found = [m for m in self.client.gather([self.client.submit(_latest, str(self.path), g, pure=False)
                                                    for g in range(self._groups)]) if m is not None]
            self._latest = pd.Timestamp(max(found), unit="us") if found else None
        return self._latest

    def activity(
        self, keys: pd.Series, as_of: pd.Series, *, types: list[str] | None, limit: int, windows: list[int],
        half_life_days: float, weights: Mapping[str, float] | None = None, accounts: pd.Series | None = None,
        key_accounts: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, list[str]]:
        """:func:`pipeline.features.intent.intent_features` of the records (``keys``, ``as_of`` and,
        for the roll-ups, ``accounts`` with ``key_accounts``), and the event types they are of
        (``types``, or the ``limit`` most frequent in the log)."""
        client = self.client
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        n = self.partitions or max(2 * n_workers, math.ceil(self._rows / EVENTS_PER_PART))
        with_accounts = accounts is not None and key_accounts is not None
        key_codes, key_index = encode(keys)
        routes = [_Route("own", key_codes, key_index, n)]
        if with_accounts:
            assert accounts is not None and key_accounts is not None
            account_codes, account_index = encode(accounts)
            routes.append(_Route("accounts", account_codes, account_index, n, key_accounts=key_accounts))
        lookups = {r.name: client.scatter(r.lookup, broadcast=True) for r in routes}
        splits = [client.submit(_split, str(self.path), g, n, lookups, pure=False) for g in range(self._groups)]
        counts: dict[str, int] = {}
        for tally in client.gather([client.submit(_counts, s, pure=False) for s in splits]):
            for name, c in tally.items():
                counts[name] = counts.get(name, 0) + c
        types = most_frequent(counts, limit=limit) if types is None else list(types)
        names = [s.name for s in intent_specs(types, windows, accounts=with_accounts)]
        n_own = len(intent_specs(types, windows))
        block = np.empty((len(names), len(keys)))
        as_of_s = epoch_seconds(as_of)
        settings = {"types": types, "windows": windows, "half_life_days": half_life_days,
                    "weights": dict(weights or {})}
        jobs = []
        for route in routes:
            for p in range(n):
                rows = route.rows(p)
                pieces = [client.submit(_piece, s, route.name, p, pure=False) for s in splits]
                records = client.scatter(Records(route.local(rows), as_of_s[rows]))
                jobs.append((route, rows, client.submit(_part, route.name, pieces, records, route.size(p), settings,
                                                        pure=False)))
        for done, (route, rows, job) in enumerate(jobs, 1):
            figures = job.result()
            if route.name == "own":
                block[:n_own, rows] = figures
            else:
                block[n_own:, rows] = figures
            log.debug("dask: part %d of %d done", done, len(jobs))
        del splits, jobs
        return pd.DataFrame(block.T, columns=names, index=keys.index, copy=False), types


class _Route:
    """How records and events are sent to parts by one key: the records' distinct values of it
    (``index``), each record's position among them (``codes``, -1: none), and the events' lookup:
    the event key values, each with the position of its value (for ``accounts``: of its account)."""

    def __init__(self, name: str, codes: np.ndarray, index: pa.Array, n: int, *,
                 key_accounts: pd.DataFrame | None = None) -> None:
        self.name, self.codes, self.n, self._size = name, np.asarray(codes, dtype=np.int64), n, len(index)
        token = uuid.uuid4().hex
        if key_accounts is None:
            self.lookup = Lookup(token, index, np.arange(len(index), dtype=np.int64))
            return
        # event key -> its account's position; a key listed twice takes its last row (even one without an
        # account), as the local engine does
        key_codes, event_keys = encode(key_accounts["event_key"])
        pairs = pd.DataFrame({"key": key_codes, "account": positions_in(key_accounts["account_key"], index)})
        pairs = pairs[pairs["key"] >= 0].drop_duplicates("key", keep="last")
        pairs = pairs[pairs["account"] >= 0]
        self.lookup = Lookup(token, event_keys.take(pa.array(pairs["key"].to_numpy())),
                             pairs["account"].to_numpy(np.int64))

    def rows(self, part: int) -> np.ndarray:
        """The records sent to ``part`` (those without a value go to part 0, where nothing matches them)."""
        return np.flatnonzero((self.codes % self.n == part) & (self.codes >= 0) | ((self.codes < 0) & (part == 0)))

    def local(self, rows: np.ndarray) -> np.ndarray:
        """The records' codes within their part (-1 stays -1)."""
        codes = self.codes[rows]
        return np.where(codes >= 0, codes // self.n, -1)

    def size(self, part: int) -> int:
        """How many values the part's codes run over."""
        return max(0, -(-(self._size - part) // self.n))


def _event_positions(name: str, column: pa.Array, lookup: Lookup) -> np.ndarray:
    """Each event's position by ``lookup`` (-1: no record's), looking each distinct key up once per
    dictionary (the row groups that ingest writes share one: looked up once per worker)."""
    if not isinstance(column, pa.DictionaryArray):
        column = pc.dictionary_encode(column)
    cached = _LOOKUPS.get(name)
    if cached is not None and cached[0] == lookup.token and cached[1].equals(column.dictionary):
        at = cached[2]
    else:
        found = pc.fill_null(pc.index_in(column.dictionary.cast(pa.large_string()), value_set=lookup.values), -1)
        at = np.append(np.append(lookup.positions, -1)[np.asarray(found.to_numpy(zero_copy_only=False))], -1)
        _LOOKUPS[name] = (lookup.token, column.dictionary, at)
    indices = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False)
    return at[indices]


def _read_group(path: str, group: int) -> pa.Table:
    try:
        return open_events(Path(path)).read_row_group(group, columns=list(COLUMNS))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: row group {group} cannot be read ({exc}); run `leadscore ingest` again") from None


def _split(path: str, group: int, n: int, lookups: dict[str, Lookup]) -> dict[str, Any]:
    """Runs on a worker: one row group's events in ``n`` pieces per route, and its events per type."""
    table = _read_group(path, group)
    pieces: dict[str, Any] = {name: [[] for _ in range(n)] for name in lookups}
    counts: dict[str, int] = {}
    for key, kind, stamp in zip(*(table.column(c).chunks for c in COLUMNS), strict=True):
        if not isinstance(kind, pa.DictionaryArray):
            kind = pc.dictionary_encode(kind)
        type_names = kind.dictionary.cast(pa.large_string()).to_pylist()
        type_codes = pc.fill_null(kind.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        tally = np.bincount(type_codes + 1, minlength=len(type_names) + 1)[1:]
        for name, c in zip(type_names, tally.tolist(), strict=True):
            counts[name] = counts.get(name, 0) + c
        micros = micros_of(stamp)
        timed = ~stamp.is_null().to_numpy(zero_copy_only=False) if stamp.null_count else None
        for name, lookup in lookups.items():
            at = _event_positions(name, key, lookup)
            if timed is not None:
                at = np.where(timed, at, -1)
            keep = np.flatnonzero(at >= 0)
            part = at[keep] % n
            by_part = np.argsort(part, kind="stable")  # stable: a piece keeps the file's order
            order = keep[by_part]
            bounds = np.searchsorted(part[by_part], np.arange(n + 1))
            for p in range(n):
                rows = order[bounds[p]:bounds[p + 1]]
                if len(rows):
                    pieces[name][p].append((at[rows] // n, type_codes[rows], type_names, micros[rows]))
    return {"pieces": pieces, "counts": counts}


def _counts(split: dict[str, Any]) -> dict[str, int]:
    return dict(split["counts"])


def _piece(split: dict[str, Any], name: str, part: int) -> list[Piece]:
    return list(split["pieces"][name][part])


def _part(name: str, pieces: list[list[Piece]], records: Records, size: int, settings: dict[str, Any]) -> np.ndarray:
    """Runs on a worker: the figures of one part's records from the part's events (a row per
    feature, a column per record)."""
    codes, as_of_s = records.codes, records.as_of_s
    vocabulary: dict[str, int] = {}
    parts = []
    for piece in (p for group in pieces for p in group):
        local, type_codes, type_names, micros = piece
        mapped = np.array([vocabulary.setdefault(t, len(vocabulary)) for t in type_names] + [-1], dtype=np.int64)
        parts.append(EventPart(local, mapped[type_codes], micros))
    types = pa.array(list(vocabulary), type=pa.large_string())
    log_ = EventLog(pa.nulls(0, pa.large_string()), types, tuple(parts))
    if name == "own":
        return coded_intent(log_, as_of_s, record_code=codes, n_keys=size, account=None, **settings)
    account = AccountCodes(codes, np.arange(size, dtype=np.int64), size)  # an account's events are keyed by it
    return coded_intent(log_, as_of_s, record_code=None, n_keys=size, account=account, **settings)


def _latest(path: str, group: int) -> int | None:
    """Runs on a worker: the latest event time (microseconds) of the row group's events with a key."""
    table = _read_group(path, group)
    latest = None
    for key, stamp in zip(table.column("event_key").chunks, table.column("timestamp").chunks, strict=True):
        known = pc.and_(pc.is_valid(key), pc.is_valid(stamp))
        if pc.any(known).as_py():
            value = int(micros_of(stamp)[known.to_numpy(zero_copy_only=False)].max())
            latest = value if latest is None else max(latest, value)
    return latest
