"""Intent features, point in time: activity strictly before each record's as-of date.

For each event type (the ``max_event_types`` most frequent in the log):

* counts in each window (e.g. 7/30/90 days before the as-of date),
* the trend: events in the last 30 days minus events in the 30 days before those,
* days since the last event of that type;

and over all types: days since the last event, and an engagement score in which every event
counts ``0.5 ** (age / half_life)`` times its type's weight. When the records have an account,
the same counts and score are rolled up over every contact of the account (``acct_*``).

An event at or after the as-of instant never counts.

How: the events are packed one per int64, (key, second, type) for a record's own events and
(account, second, type) for the account roll-ups, and each set is sorted once (``np.sort``). A
compiled pass (numba, releasing the GIL) then walks each: a record reads its key's run of events,
oldest first, up to its as-of second; the account pass merges the account timeline with the
records' as-of dates in timeline order, keeping a running decayed sum. Both write straight into
the rows of one float block. The two passes run on two threads. A record's figures depend only on
its key's and its account's events (the timelines come from the whole log), so a record gets the
same figures alone or in a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from pipeline.contracts.features import NO_ACTIVITY_DAYS, FeatureSpec
from pipeline.errors import DataError
from pipeline.features.events import EventLog, PendingEventLog, encode

TREND_DAYS = 30
DAY_S = 86_400
REANCHOR_HALF_LIVES = 512  # the account pass rescales its running sum before 2 ** this (float64 ends at 2 ** 1023)


def as_event_log(events: EventLog | PendingEventLog | pd.DataFrame) -> EventLog:
    """The log itself: a frame converted, a log being read waited for."""
    if isinstance(events, PendingEventLog):
        return events.result()
    return events if isinstance(events, EventLog) else EventLog.from_frame(events)


def is_intent_feature(name: str) -> bool:
    """Whether ``name`` is (or could be) one of the features :func:`intent_specs` makes."""
    return name.startswith(("evt_", "acct_")) or name in ("days_since_last_event", "engagement_score")


def event_types(events: EventLog | pd.DataFrame, *, limit: int) -> list[str]:
    """The ``limit`` most frequent event types (ties by name), in alphabetical order."""
    return most_frequent(as_event_log(events).type_counts(), limit=limit)


def most_frequent(counts: Mapping[str, int], *, limit: int) -> list[str]:
    """The ``limit`` most frequent of ``counts`` (events per type; ties by name), in alphabetical order."""
    ordered = sorted(((t, c) for t, c in counts.items() if c > 0), key=lambda kv: (-kv[1], kv[0]))
    return sorted(t for t, _ in ordered[:limit])


def _label(event_type: str) -> str:
    return event_type.replace("_", " ").capitalize()


def intent_specs(types: list[str], windows: list[int], *, accounts: bool = False) -> list[FeatureSpec]:
    specs = []
    for t in types:
        label = _label(t)
        specs += [FeatureSpec(f"evt_{t}_{w}d", "numeric", "intent", t, f"{label} events in the last {w} days")
                  for w in windows]
        specs.append(FeatureSpec(f"evt_{t}_trend", "numeric", "intent", t,
                                 f"{label} events in the last {TREND_DAYS} days minus the {TREND_DAYS} before"))
        specs.append(FeatureSpec(f"evt_{t}_days_since", "numeric", "intent", t, f"Days since the last {label.lower()}"))
    specs.append(FeatureSpec("days_since_last_event", "numeric", "intent", "activity", "Days since the last activity"))
    specs.append(FeatureSpec("engagement_score", "numeric", "intent", "activity", "Recent engagement (decayed)"))
    if accounts:
        specs += [FeatureSpec(f"acct_events_{w}d", "numeric", "intent", "account_activity",
                              f"Activity across the account in the last {w} days") for w in windows]
        specs.append(FeatureSpec("acct_engagement_score", "numeric", "intent", "account_activity",
                                 "Recent engagement across the account (decayed)"))
    return specs


def _positions(values: pa.Array, index: pa.Array) -> np.ndarray:
    """Position of each value in ``index``; -1 where absent or missing (a hash join in Arrow)."""
    found = pc.fill_null(pc.index_in(values, value_set=index), -1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _with_missing(table: np.ndarray, missing: int) -> np.ndarray:
    """``table`` plus one last slot, ``missing``: indexing it with a code of -1 lands there."""
    return np.append(table, np.asarray(missing, dtype=table.dtype))


def positions_in(values: pd.Series, index: pa.Array) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent or missing), hashing each distinct value once.
    Free for a categorical whose categories are ``index`` (ingest writes keys with shared dictionaries)."""
    codes, distinct = encode(values)
    if len(distinct) == len(index) and distinct.equals(index):
        return codes.astype(np.int64)
    return _with_missing(_positions(distinct, index), -1)[codes]


def epoch_seconds(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[s]").view(np.int64)


@njit(cache=True, nogil=True)
def _pack(key: np.ndarray, kind: np.ndarray, micros: np.ndarray, group_of_code: np.ndarray, type_of_code: np.ndarray,
          t0: int, shift: int, type_bits: int, out: np.ndarray, n: int) -> int:  # pragma: no cover - compiled
    """Append (group, second since ``t0``, type) of each event whose key code has a group (>= 0) to
    ``out`` from position ``n``, packed in one int64 that sorts by group, then time; the new length."""
    other = type_of_code[len(type_of_code) - 1]  # the code of a missing type: the spare last slot's
    for i in range(len(key)):
        code = key[i]
        if code < 0:
            continue
        group = group_of_code[code]
        if group < 0:
            continue
        t = other if kind[i] < 0 else type_of_code[kind[i]]
        out[n] = (group << shift) | ((micros[i] // 1_000_000 - t0) << type_bits) | t
        n += 1
    return n


@njit(cache=True, nogil=True)
def _segments(packed: np.ndarray, shift: int, n_groups: int) -> np.ndarray:  # pragma: no cover - compiled
    """Where each group's events start in the sorted ``packed`` (and, last, where they all end)."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(len(packed)):
        start[(packed[i] >> shift) + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    return start


def _int64(values: np.ndarray) -> np.ndarray:
    """``values`` as a writable, contiguous int64 array (a copy only if it is not one already).

    Every kernel is called with one signature only. Numba caches each signature a kernel is compiled
    for in one index file per kernel; processes compiling other signatures at the same time (Dask
    workers, test workers) can leave an index entry pointing at another signature's machine code,
    which then reads its arrays with the wrong element size."""
    return np.require(values, dtype=np.int64, requirements=["C", "W"])


@dataclass(frozen=True)
class _Timeline:
    """Events sorted by (group, time, type), packed one per int64: a group's events are a run."""

    packed: np.ndarray
    shift: int       # bits below the group
    type_bits: int   # bits of the type, the lowest


def _timeline(log: EventLog, group_of_code: np.ndarray, type_of_code: np.ndarray, *, n_groups: int,
              latest_s: int, t0: int) -> _Timeline:
    """The events whose key has a group (``group_of_code``: -1 none), sorted into a :class:`_Timeline`."""
    # as many bits as the largest type code needs ("other" is the last of the types asked for, which
    # a log without some of them, a night's export say, can hold fewer of)
    type_bits = max(int(type_of_code.max(initial=0)).bit_length(), 1)
    shift = max(latest_s - t0, 1).bit_length() + type_bits
    if max(n_groups, 1).bit_length() + shift > 63:
        raise DataError(f"the activity log spans too many records, accounts or years for one sort key: "
                        f"{n_groups} groups over {(latest_s - t0) / DAY_S / 365:.0f} years")
    packed = np.empty(len(log), dtype=np.int64)
    n = 0
    for part in log.parts:
        n = _pack(_int64(part.key), _int64(part.kind), _int64(part.micros), _int64(group_of_code),
                  _int64(type_of_code), t0, shift, type_bits, packed, n)
    packed = packed[:n]
    packed.sort()
    return _Timeline(packed, shift, type_bits)


@njit(cache=True, nogil=True)
def _walk_own(packed: np.ndarray, start: np.ndarray, record_code: np.ndarray, as_of: np.ndarray, shift: int,
              type_bits: int, edges: np.ndarray, rate: float, type_weight: np.ndarray, window_edge: np.ndarray,
              trend_edges: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Each record's figures from its key's run of events, oldest first, up to its as-of second.

    ``edges``: the window bounds in seconds, ascending; ``window_edge``: the edge of each output
    window; ``trend_edges``: the edges of the last 30 days and of the 60. ``rows[t]``: the output
    rows of type ``t`` (its windows, trend, days since); ``rows[n_types]``: days since the last
    event and the engagement score."""
    n_types = len(rows) - 1
    n_windows = len(window_edge)
    second_mask = (1 << (shift - type_bits)) - 1
    type_mask = (1 << type_bits) - 1
    never = np.iinfo(np.int64).max
    counts = np.zeros((n_types, len(edges)), dtype=np.int64)
    youngest = np.empty(n_types + 1, dtype=np.int64)
    for r in range(len(record_code)):
        counts[:] = 0
        youngest[:] = never
        score = 0.0
        code = record_code[r]
        if code >= 0:
            for i in range(start[code], start[code + 1]):
                event = packed[i]
                age = as_of[r] - ((event >> type_bits) & second_mask)
                if age <= 0:  # the run is in time order: the rest is at or after the as-of second
                    break
                t = event & type_mask
                youngest[t] = min(youngest[t], age)
                score += np.exp2(age * rate) * type_weight[t]
                if t < n_types:
                    for b in range(len(edges)):
                        if age <= edges[b]:
                            counts[t, b] += 1
        last = never
        for t in range(n_types + 1):
            last = min(last, youngest[t])
        for t in range(n_types):
            for w in range(n_windows):
                out[rows[t, w], r] = counts[t, window_edge[w]]
            out[rows[t, n_windows], r] = 2 * counts[t, trend_edges[0]] - counts[t, trend_edges[1]]
            out[rows[t, n_windows + 1], r] = NO_ACTIVITY_DAYS if youngest[t] == never else youngest[t] // DAY_S
        out[rows[n_types, 0], r] = NO_ACTIVITY_DAYS if last == never else last // DAY_S
        out[rows[n_types, 1], r] = score


def _own_activity(
    log: EventLog, record_code: np.ndarray, type_of_code: np.ndarray, as_of: np.ndarray, type_weight: np.ndarray,
    *, n_keys: int, types: list[str], windows: list[int], half_life_days: float, t0: int, latest_s: int,
    names: list[str], out: np.ndarray,
) -> None:
    """Per-record figures from each record's own events, written into the rows of ``out`` (one per
    feature of ``names``). The events of the batch's keys are sorted by (key, time) once; each
    record then reads its key's run, which several records of one key share."""
    wanted = np.zeros(n_keys + 1, dtype=bool)
    wanted[record_code] = True  # a code of -1 marks the spare last slot
    group_of_code = np.where(wanted[:n_keys], np.arange(n_keys), -1)
    timeline = _timeline(log, group_of_code, type_of_code, n_groups=n_keys, latest_s=latest_s, t0=t0)
    bounds = sorted({TREND_DAYS, 2 * TREND_DAYS, *windows})
    at = {name: i for i, name in enumerate(names)}
    rows = np.array([[at[f"evt_{t}_{w}d"] for w in windows] + [at[f"evt_{t}_trend"], at[f"evt_{t}_days_since"]]
                     for t in types] + [[at["days_since_last_event"], at["engagement_score"]] + [0] * len(windows)],
                    dtype=np.int64).reshape(len(types) + 1, len(windows) + 2)
    _walk_own(timeline.packed, _segments(timeline.packed, timeline.shift, n_keys), _int64(record_code), as_of - t0,
              timeline.shift, timeline.type_bits, np.array(bounds, dtype=np.int64) * DAY_S,
              -1.0 / (half_life_days * DAY_S), type_weight, np.array([bounds.index(w) for w in windows]),
              np.array([bounds.index(TREND_DAYS), bounds.index(2 * TREND_DAYS)]), rows, out)


@njit(cache=True, nogil=True)
def _walk_accounts(packed: np.ndarray, records: np.ndarray, targets: np.ndarray, windows_s: np.ndarray,
                   shift: int, type_bits: int, half_life_s: float, type_weight: np.ndarray,
                   counts_out: np.ndarray, score_out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One pass over the sorted events and the records' as-of dates, both in timeline order.

    ``targets``: each record's (account, as-of second) packed like the events, ascending;
    ``records``: whose target each is. For each record: the account's events in each window before
    it (``counts_out[w, record]``), and their decayed score (``score_out[record]``), from a running
    sum of ``2 ** ((t - anchor) / half_life)`` over the account's events in time order (Kahan
    compensated). Terms grow along the timeline, so the sum keeps full relative precision; it is
    rescaled when the exponent passes ``REANCHOR_HALF_LIVES``. Every figure of an account depends
    on that account's events alone: a record gets the same figures alone or in a batch."""
    n = len(packed)
    second_mask = (1 << (shift - type_bits)) - 1
    type_mask = (1 << type_bits) - 1
    reanchor = REANCHOR_HALF_LIVES * half_life_s
    lower = np.zeros(len(windows_s), dtype=np.int64)
    e = 0
    current = -1
    total = 0.0
    carry = 0.0
    anchor = 0
    for i in range(len(records)):
        target = targets[i]
        account = target >> shift
        second = (target >> type_bits) & second_mask
        while e < n and packed[e] < target:
            event = packed[e]
            at = (event >> type_bits) & second_mask
            if (event >> shift) != current:
                current = event >> shift
                total = 0.0
                carry = 0.0
                anchor = at
            elif at - anchor > reanchor:
                scale = np.exp2((anchor - at) / half_life_s)
                total *= scale
                carry *= scale
                anchor = at
            y = np.exp2((at - anchor) / half_life_s) * type_weight[event & type_mask] - carry
            t = total + y
            carry = (t - total) - y
            total = t
            e += 1
        record = records[i]
        if e > 0 and current == account:
            score_out[record] = total * np.exp2((anchor - second) / half_life_s)
        else:
            score_out[record] = 0.0
        for w in range(len(windows_s)):
            start = max(second - windows_s[w], 0)
            bound = (account << shift) | (start << type_bits)
            p = lower[w]
            while p < n and packed[p] < bound:
                p += 1
            lower[w] = p
            counts_out[w, record] = e - p


def _account_activity(
    log: EventLog, record_account: np.ndarray, account_of_code: np.ndarray, type_of_code: np.ndarray,
    as_of: np.ndarray, type_weight: np.ndarray, *, n_accounts: int, windows: list[int], half_life_days: float,
    t0: int, latest_s: int, counts_out: np.ndarray, score_out: np.ndarray,
) -> None:
    """Per-record figures over every event of the record's account before its as-of date, written
    into ``counts_out`` (a row per window) and ``score_out``. ``record_account``: each record's
    account code (-1: none); ``account_of_code``: the account of each event key code (-1: none)."""
    counts_out[:] = 0
    score_out[:] = 0
    records = np.flatnonzero(record_account >= 0)
    if not len(records):
        return
    timeline = _timeline(log, account_of_code, type_of_code, n_groups=n_accounts, latest_s=latest_s, t0=t0)
    as_of = np.clip(as_of[records] - t0, 0, (1 << (timeline.shift - timeline.type_bits)) - 1)
    targets = record_account[records].astype(np.int64) << timeline.shift | as_of << timeline.type_bits
    order = np.argsort(targets, kind="stable")
    _walk_accounts(timeline.packed, records[order], targets[order], np.array(windows, dtype=np.int64) * DAY_S,
                   timeline.shift, timeline.type_bits, float(half_life_days * DAY_S), type_weight, counts_out,
                   score_out)


def _account_of_code(keys: pa.Array, key_accounts: pd.DataFrame) -> tuple[np.ndarray, pa.Array]:
    """The account code of each event key code (-1: none), and the distinct accounts: every account
    of the log, not only the batch's, so an account's timeline is the same alone or in a batch."""
    account_of_row, accounts = encode(key_accounts["account_key"])
    key_of_row = positions_in(key_accounts["event_key"], keys)
    account_of_code = np.full(len(keys), -1, dtype=np.int64)
    known = key_of_row >= 0
    account_of_code[key_of_row[known]] = account_of_row[known]
    return account_of_code, accounts


@dataclass(frozen=True)
class AccountCodes:
    """The records' accounts as codes: each record's account (-1: none), the account of each event
    key code of the log (-1: none), and how many accounts the codes run over."""

    record_account: np.ndarray
    account_of_code: np.ndarray
    n_accounts: int


def intent_features(
    keys: pd.Series, as_of: pd.Series, events: EventLog | pd.DataFrame, *, types: list[str], windows: list[int],
    half_life_days: float, weights: Mapping[str, float] | None = None,
    accounts: pd.Series | None = None, key_accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Intent features for each record, aligned with ``keys`` (each record's event key).

    ``accounts`` (each record's account) and ``key_accounts`` (``event_key`` -> ``account_key``, as
    ingest writes it) add the account-level roll-up.
    """
    with_accounts = accounts is not None and key_accounts is not None
    names = [s.name for s in intent_specs(types, windows, accounts=with_accounts)]
    if not len(keys):
        return pd.DataFrame(columns=names, index=keys.index, dtype=float)
    log = as_event_log(events)
    account = None
    if with_accounts:
        assert accounts is not None and key_accounts is not None
        account_of_code, account_index = _account_of_code(log.keys, key_accounts)
        account = AccountCodes(positions_in(accounts, account_index), account_of_code, len(account_index))
    block = coded_intent(log, epoch_seconds(as_of), record_code=positions_in(keys, log.keys), n_keys=len(log.keys),
                         account=account, types=types, windows=windows, half_life_days=half_life_days,
                         weights=weights)
    return pd.DataFrame(block.T, columns=names, index=keys.index, copy=False)


def coded_intent(
    log: EventLog, as_of_s: np.ndarray, *, record_code: np.ndarray | None, n_keys: int, account: AccountCodes | None,
    types: list[str], windows: list[int], half_life_days: float, weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """:func:`intent_features` on codes: a row per feature (the records' own figures unless
    ``record_code`` is None, then the account roll-up if ``account``), a column per record.

    ``record_code``: each record's key code into the log (-1: none), of ``n_keys``; ``as_of_s``:
    each record's as-of instant in seconds since 1970. The Dask engine calls this where the events
    are: a key's own on one worker, an account's (coded as its keys) on another.
    """
    own, every = intent_specs(types, windows), intent_specs(types, windows, accounts=True)
    names = ([s.name for s in own] if record_code is not None else []) + \
        ([s.name for s in every[len(own):]] if account is not None else [])
    n_types = len(types)
    type_of_name = _positions(log.types, pa.array(types, type=pa.large_string()))
    type_of_code = _with_missing(np.where(type_of_name >= 0, type_of_name, n_types), n_types)  # n_types: other
    weight = np.array([float((weights or {}).get(t, 1.0)) for t in types] + [1.0])  # the last: other types
    stamps = [(int(p.micros.min()) // 1_000_000, int(p.micros.max()) // 1_000_000) for p in log.parts if len(p)]
    t0, latest_s = (min(s[0] for s in stamps), max(s[1] for s in stamps)) if stamps else (0, 0)
    # The sort key spans the latest as-of second too: an as-of date past the last event is packed as
    # it is, not clipped to the log's span (which would make the figures depend on the rest of the log).
    latest_s = max(latest_s, int(as_of_s.max())) if len(as_of_s) else latest_s
    # One float block, a row per feature: each pass writes its rows, and the frame takes the block as is.
    block = np.empty((len(names), len(as_of_s)))
    with ThreadPoolExecutor(max_workers=1) as pool:
        account_part = None
        if account is not None:
            first = names.index(f"acct_events_{windows[0]}d")
            # On a second core: both passes are compiled and release the GIL (so does NumPy's sort).
            account_part = pool.submit(
                _account_activity, log, account.record_account, account.account_of_code, type_of_code, as_of_s,
                weight, n_accounts=account.n_accounts, windows=windows, half_life_days=half_life_days, t0=t0,
                latest_s=latest_s, counts_out=block[first:first + len(windows)], score_out=block[first + len(windows)])
        if record_code is not None:
            _own_activity(log, record_code, type_of_code, as_of_s, weight, n_keys=n_keys, types=types,
                          windows=windows, half_life_days=half_life_days, t0=t0, latest_s=latest_s, names=names,
                          out=block)
        if account_part is not None:
            account_part.result()
    return block
