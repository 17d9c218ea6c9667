"""Intent features, point in time: activity strictly before each record's as-of date.

For each event type (the ``max_event_types`` most frequent in the log):

* counts in each window (e.g. 7/30/90 days before the as-of date),
* the trend: events in the last 30 days minus events in the 30 days before those,
* days since the last event of that type;

and over all types: days since the last event, and an engagement score in which every event
counts ``0.5 ** (age / half_life)`` times its type's weight. When the records have an account,
the same counts and score are rolled up over every contact of the account (``acct_*``).

An event at or after the as-of instant never counts.

How: a record's own events are found with one gather (event key -> record), and every
per-(record, type) figure is then one ``np.bincount`` (counts per window bucket, decayed sums)
or one ``np.minimum.at`` (the latest event) over the events, in the order of the log: no sort,
no join table, O(events + records x types). Account roll-ups compare each record with the
events of *other* contacts, whose as-of dates differ, so there the account's events are sorted
once by time and each record finds its windows with a binary search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import DataError
from pipeline.features.spec import FeatureSpec

NO_ACTIVITY_DAYS = 9999.0  # days since the last event when there is none before the as-of date
TREND_DAYS = 30
DAY_S = 86_400
CHUNK_ROWS = 1 << 21  # events per pass: the temporaries stay small and are reused
_Pairs = tuple[slice | np.ndarray, np.ndarray]  # events (a slice of the log, or positions) and their records
MAX_HALF_LIVES = 900  # 2 ** 900 still fits a float64 (up to 2 ** 1023)


def event_types(events: pd.DataFrame, *, limit: int) -> list[str]:
    """The ``limit`` most frequent event types (ties by name), in alphabetical order."""
    column = events["event_type"]
    if isinstance(column.dtype, pd.CategoricalDtype):  # as ingest writes it: count the codes, no strings made
        codes = column.cat.codes.to_numpy()
        tally = np.zeros(len(column.cat.categories) + 1, dtype=np.int64)  # the first: missing (code -1)
        for chunk in _chunks(len(codes)):  # in chunks: the copy to int64 that bincount makes stays small
            tally += np.bincount(codes[chunk].astype(np.intp) + 1, minlength=len(tally))
        tally = tally[1:]
        counts: Iterable[tuple[str, int]] = zip(column.cat.categories.astype(str), tally.tolist(), strict=True)
    else:
        counts = ((str(t), int(c)) for t, c in column.value_counts().items())
    ordered = sorted(((t, c) for t, c in counts if c > 0), key=lambda kv: (-kv[1], kv[0]))
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


def _arrow_strings(values: pd.Series | pd.Index) -> pa.Array:
    array = pa.array(values.astype("string"), type=pa.large_string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _positions(values: pa.Array, index: pa.Array) -> np.ndarray:
    """Position of each value in ``index``; -1 where absent or missing (a hash join in Arrow)."""
    found = pc.fill_null(pc.index_in(values, value_set=index), -1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _dictionary(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """A column's codes (-1: missing) and distinct values. Free for a categorical (as ingest writes
    event keys and types): only its categories are ever hashed, never its millions of rows."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), _arrow_strings(values.cat.categories)
    encoded = pc.dictionary_encode(_arrow_strings(values))
    return np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)), encoded.dictionary


def _with_missing(table: np.ndarray, missing: int) -> np.ndarray:
    """``table`` plus one last slot, ``missing``: indexing it with a code of -1 lands there."""
    return np.append(table, np.asarray(missing, dtype=table.dtype))


def _codes(values: pd.Series, index: pa.Array) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent or missing), hashing each distinct value once."""
    codes, distinct = _dictionary(values)
    return _with_missing(_positions(distinct, index), -1)[codes]


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[s]").view(np.int64)


def _epoch_micros(values: pd.Series) -> np.ndarray:
    """Microseconds since 1970: a view of the column as ingest writes it (datetime64[us]), no copy."""
    return pd.to_datetime(values).to_numpy(dtype="datetime64[us]").view(np.int64)


def _chunks(n: int) -> Iterator[slice]:
    return (slice(start, min(start + CHUNK_ROWS, n)) for start in range(0, n, CHUNK_ROWS))


def _pairs(key_codes: np.ndarray, key_of_code: np.ndarray, record_key: np.ndarray, n_keys: int) -> Iterator[_Pairs]:
    """(events, their records) joined on the key, chunk by chunk. ``key_codes``: each event's code
    (-1: none), ``key_of_code``: each code's key (-1: no record has it), ``record_key``: each record's
    key (-1: none). With one record per key (the usual case) a chunk is a slice of the log and one
    gather, and an event no record has the key of gets record ``len(record_key)``, a spare one."""
    n_records = len(record_key)
    has = record_key >= 0
    per_key = np.bincount(record_key[has], minlength=n_keys)
    if per_key.max(initial=0) <= 1:
        record_of_key = np.full(n_keys + 1, n_records, dtype=np.int64)  # the last: codes without a key
        record_of_key[record_key[has]] = np.flatnonzero(has)
        record_of_code = _with_missing(record_of_key[key_of_code], n_records)
        for chunk in _chunks(len(key_codes)):
            yield chunk, record_of_code[key_codes[chunk]]
        return
    # Several records share a key (deals of one contact): each event once per record of its key.
    event_key = _with_missing(key_of_code, -1)[key_codes]
    by_key = np.argsort(np.where(has, record_key, n_keys), kind="stable")
    first = np.concatenate(([0], np.cumsum(per_key)[:-1]))
    repeats = np.where(event_key >= 0, _with_missing(per_key, 0)[event_key], 0)
    event = np.repeat(np.arange(len(event_key)), repeats)
    within = np.arange(len(event)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    record = by_key[first[event_key[event]] + within]
    for chunk in _chunks(len(event)):
        yield event[chunk], record[chunk]


def _own_activity(
    pairs: Iterable[_Pairs], micros: np.ndarray, kind_of_event: Callable[[slice | np.ndarray], np.ndarray],
    as_of: np.ndarray, type_weight: np.ndarray | None, *, n_types: int, windows: list[int], half_life_days: float,
) -> dict[str, np.ndarray]:
    """Per-record figures from each record's own events, accumulated chunk by chunk over the (events,
    records) pairs. ``kind_of_event`` gives the events' type codes (``n_types``: any other type)."""
    n_records = len(as_of)
    bounds = sorted({TREND_DAYS, 2 * TREND_DAYS, *windows})
    edges = [days * DAY_S for days in bounds]  # bucket k: ages in (edges[k-1], edges[k]] seconds
    width = n_types + 1  # cells per record: one per type, and one for every other type
    never = np.iinfo(np.int64).max
    as_of = _with_missing(as_of, np.iinfo(np.int64).min // 4)  # the spare record: before any event
    counts = np.zeros((len(bounds), n_records, n_types), dtype=np.int32)
    youngest = np.full(n_records * width, never, dtype=np.int64)
    engagement = np.zeros(n_records)
    rate = -1.0 / (half_life_days * DAY_S)
    one = np.int32(1)
    for event, record in pairs:
        age = as_of[record] - micros[event] // 1_000_000
        before = age > 0
        record, age, kind = record[before], age[before], kind_of_event(event)[before]
        cell = record * width + kind
        np.minimum.at(youngest, cell, age)
        with np.errstate(under="ignore"):
            decayed = np.exp2(age * rate)
        if type_weight is not None:
            decayed *= type_weight[kind]
        np.add.at(engagement, record, decayed)
        counted = (kind < n_types) & (age <= edges[-1])
        bucket = np.zeros(int(counted.sum()), dtype=np.int64)
        age = age[counted]
        for edge in edges[:-1]:
            bucket += age > edge
        np.add.at(counts.reshape(-1), (bucket * n_records + record[counted]) * n_types + kind[counted], one)

    within: dict[int, np.ndarray] = {}
    total = np.zeros((n_records, n_types), dtype=np.int64)
    for k, days in enumerate(bounds):
        total = total + counts[k]
        within[days] = total
    del counts
    columns: dict[str, np.ndarray] = {f"win_{w}": within[w] for w in windows}
    columns["trend"] = 2 * within[TREND_DAYS] - within[2 * TREND_DAYS]
    by_cell = youngest.reshape(n_records, width)
    columns["days_since"] = _days(by_cell[:, :n_types])
    columns["days_since_last_event"] = _days(by_cell.min(axis=1))
    columns["engagement_score"] = engagement
    return columns


def _days(youngest: np.ndarray) -> np.ndarray:
    """Whole days from the youngest age in seconds; ``NO_ACTIVITY_DAYS`` where there was none."""
    days = (youngest // DAY_S).astype(float)
    days[youngest == np.iinfo(np.int64).max] = NO_ACTIVITY_DAYS
    return days


def _running_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Cumulative sums of ``values`` restarting at each group (``group``: int codes). Each group's sums
    depend on its own values only, and pandas compensates the rounding (Kahan).

    pandas' own kernel is called directly: the public ``groupby().cumsum()`` first hashes 20M group
    codes it does not need to (10x the time). Should that private kernel move, the public route runs."""
    try:
        from pandas._libs.groupby import group_cumsum

        out = np.empty((len(values), 1))
        group_cumsum(out, values.reshape(-1, 1), group.astype(np.intp, copy=False), n_groups, False)
        return out[:, 0]
    except (ImportError, TypeError, ValueError):  # pragma: no cover - depends on the pandas release
        return _running_sum_public(values, group, n_groups)


def _running_sum_public(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    codes = pd.Categorical.from_codes(group, categories=pd.RangeIndex(n_groups))
    return pd.Series(values).groupby(codes, sort=False, observed=True).cumsum().to_numpy()


def _account_activity(
    record_account: np.ndarray, account_of_code: np.ndarray, key_codes: np.ndarray, micros: np.ndarray,
    kind_of_event: Callable[[slice | np.ndarray], np.ndarray], as_of: np.ndarray, type_weight: np.ndarray | None,
    *, n_accounts: int, n_types: int, windows: list[int], half_life_days: float,
) -> dict[str, np.ndarray]:
    """Per-record figures over every event of the record's account before its as-of date.
    ``record_account``: each record's account code (-1: none); ``account_of_code``: the account of each
    event key code (-1: none), the events' codes being ``key_codes``.

    The account's events are sorted by (account, time) once; a record's window is a pair of binary
    searches, and the decayed score a running sum within the account read at the same position.
    Every figure of an account depends on that account's events alone, so a record gets the same
    figures alone or in a batch.
    """
    t0 = int(micros.min()) // 1_000_000 if len(micros) else 0  # seconds since the first event
    as_of = np.maximum(as_of - t0, 0)
    # One sort of packed (account, second, type) keys: the type carries each event's weight.
    type_bits = max(n_types.bit_length(), 1)
    latest = (int(micros.max()) // 1_000_000 - t0) if len(micros) else 0
    second_bits = max(latest.bit_length(), int(as_of.max(initial=0)).bit_length(), 1)
    shift = second_bits + type_bits
    if n_accounts.bit_length() + shift > 63:
        raise DataError(f"the activity log spans too many accounts or years for one sort key: {n_accounts} accounts, "
                        f"{latest / DAY_S / 365:.0f} years")
    account_of_code = _with_missing(account_of_code, -1)
    packed = np.empty(len(key_codes), dtype=np.int64)
    n = 0
    for chunk in _chunks(len(key_codes)):
        account = account_of_code[key_codes[chunk]]
        known = account >= 0
        seconds = micros[chunk][known] // 1_000_000 - t0
        part = account[known].astype(np.int64) << shift | seconds << type_bits | kind_of_event(chunk)[known]
        packed[n:n + len(part)] = part
        n += len(part)
    packed = packed[:n]
    packed.sort()
    second_mask, type_mask = (1 << second_bits) - 1, (1 << type_bits) - 1
    first = np.searchsorted(packed, np.arange(n_accounts + 1, dtype=np.int64) << shift)
    # Each term is 2 ** (half-lives since the account's first event): terms grow along the timeline, so
    # a running sum is always at least its latest term and keeps full relative precision; a record's
    # score is the running sum at its as-of date scaled back by 2 ** -(half-lives since that anchor).
    # (The anchor is moved later for an account active over more than MAX_HALF_LIVES half-lives: events
    # older than that weigh less than 2 ** -MAX_HALF_LIVES of a fresh one anyway.)
    half_life_s = half_life_days * DAY_S
    active = first[1:] > first[:-1]
    anchor = np.zeros(n_accounts, dtype=np.int64)
    anchor[active] = np.maximum(packed[first[:-1][active]] >> type_bits & second_mask,
                                (packed[first[1:][active] - 1] >> type_bits & second_mask)
                                - int(MAX_HALF_LIVES * half_life_s))
    term, group = np.empty(n), np.empty(n, dtype=np.intp)
    for chunk in _chunks(n):
        part = packed[chunk]
        group[chunk] = part >> shift
        with np.errstate(under="ignore"):
            term[chunk] = np.exp2(((part >> type_bits & second_mask) - anchor[group[chunk]]) / half_life_s)
        if type_weight is not None:
            term[chunk] *= type_weight[part & type_mask]
    running = _running_sum(term, group, n_accounts)
    del term, group

    has = record_account >= 0
    account = np.maximum(record_account, 0)
    base = account.astype(np.int64) << shift
    by_query = np.argsort(base + as_of)  # the records' queries in timeline order: searches walk forward

    def position(seconds_since_t0: np.ndarray) -> np.ndarray:
        """Per record: the first event of its account at or after that second."""
        found = np.empty(len(account), dtype=np.int64)
        found[by_query] = np.searchsorted(packed, (base + (np.maximum(seconds_since_t0, 0) << type_bits))[by_query])
        return found

    end = position(as_of)
    columns = {f"acct_events_{w}d": np.where(has, end - position(as_of - w * DAY_S), 0).astype(float)
               for w in windows}
    total = running[np.maximum(end - 1, 0)] if len(running) else np.zeros(len(end))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        decayed = total * np.exp2((anchor[account] - as_of) / half_life_s)
    columns["acct_engagement_score"] = np.where(has & (end > first[account]), np.nan_to_num(decayed, posinf=0.0), 0.0)
    return columns


def intent_features(
    keys: pd.Series, as_of: pd.Series, events: pd.DataFrame, *, types: list[str], windows: list[int],
    half_life_days: float = 30.0, weights: Mapping[str, float] | None = None,
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
    n_types = len(types)
    record_key, key_index = _dictionary(keys)  # codes into the records' distinct keys
    micros = _epoch_micros(events["timestamp"])
    as_of_s = _epoch_seconds(as_of)
    type_codes, type_names = _dictionary(events["event_type"])
    type_of_name = _positions(type_names, pa.array(types, type=pa.large_string()))
    type_of_code = _with_missing(np.where(type_of_name >= 0, type_of_name, n_types), n_types)  # n_types: other

    def kind_of_event(event: slice | np.ndarray) -> np.ndarray:
        return type_of_code[type_codes[event]]

    type_weight = None
    if any(float(w) != 1.0 for w in (weights or {}).values()):
        type_weight = np.array([float((weights or {}).get(t, 1.0)) for t in types] + [1.0])  # last: other types
    key_codes, key_names = _dictionary(events["event_key"])
    pairs = _pairs(key_codes, _positions(key_names, key_index), record_key, len(key_index))
    with ThreadPoolExecutor(max_workers=1) as pool:
        account_part = None
        if with_accounts:
            assert accounts is not None and key_accounts is not None
            # Every account of the log, not only the batch's: an account's timeline is the same alone or in a batch.
            account_of_key, account_index = _dictionary(key_accounts["account_key"])
            # Each event's account through its key: one lookup per distinct key, then a gather per chunk.
            account_of_key = _with_missing(account_of_key.astype(np.int64), -1)
            account_of_code = account_of_key[_positions(key_names, _arrow_strings(key_accounts["event_key"]))]
            # On a second core: much of it (sorting aside) runs outside the GIL, while the own-activity
            # pass below mostly holds it. The two share nothing but read-only inputs.
            account_part = pool.submit(
                _account_activity, _codes(accounts, account_index), account_of_code, key_codes, micros,
                kind_of_event, as_of_s, type_weight, n_accounts=len(account_index), n_types=n_types,
                windows=windows, half_life_days=half_life_days)
        columns = _own_activity(pairs, micros, kind_of_event, as_of_s, type_weight, n_types=n_types,
                                windows=windows, half_life_days=half_life_days)
        if account_part is not None:
            columns |= account_part.result()

    # One float block, a row per feature: the frame takes it as is, without copying column by column.
    block = np.empty((len(names), len(keys)))
    i = 0
    for j in range(n_types):
        for source in [*(f"win_{w}" for w in windows), "trend", "days_since"]:
            block[i] = columns[source][:, j]
            i += 1
    for name in names[i:]:
        block[i] = columns[name]
        i += 1
    return pd.DataFrame(block.T, columns=names, index=keys.index, copy=False)
