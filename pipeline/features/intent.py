"""Intent features, point in time: activity strictly before each record's as-of date.

For each event type (the ``max_event_types`` most frequent in the log):

* counts in each window (e.g. 7/30/90 days before the as-of date),
* the trend: events in the last 30 days minus events in the 30 days before those,
* days since the last event of that type;

and over all types: days since the last event, and an engagement score in which every event
counts ``0.5 ** (age / half_life)`` times its type's weight. When the records have an account,
the same counts and score are rolled up over every contact of the account (``acct_*``).

An event at or after the as-of instant never counts. No join of events to records is built:
events are sorted once by (group, time), and each record finds its window with a binary search,
so the cost is O((events + records x types) log events) and memory stays linear in the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.features.spec import FeatureSpec

NO_ACTIVITY_DAYS = 9999.0  # days since the last event when there is none before the as-of date
TREND_DAYS = 30
_SHIFT = np.int64(1) << np.int64(34)  # room for 544 years of seconds below the group id
DAY_S = 86_400


def event_types(events: pd.DataFrame, *, limit: int) -> list[str]:
    """The ``limit`` most frequent event types (ties by name), in alphabetical order."""
    counts = events["event_type"].value_counts()  # on a categorical: counts its codes, no strings made
    ordered = sorted(((str(t), int(c)) for t, c in counts.items() if c > 0), key=lambda kv: (-kv[1], kv[0]))
    return sorted(str(t) for t, _ in ordered[:limit])


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


@dataclass(frozen=True)
class _Timeline:
    """Events sorted by (group, time), answering point-in-time questions for (group, as-of) queries."""

    composite: np.ndarray   # group << 34 | seconds since t0, sorted
    decay_sum: np.ndarray   # running sums within each group of weight * 2 ** ((t - reference) / half-life)
    reference: np.ndarray   # per group: the latest as-of date that asks about it (seconds since t0)
    half_life_s: float

    @classmethod
    def build(cls, group: np.ndarray, seconds: np.ndarray, weight: np.ndarray | None, *, reference: np.ndarray,
              half_life_days: float, decay: bool = True) -> _Timeline:
        """``reference[g]``: the latest as-of date of group ``g``'s records. Scaling each event by its
        distance to that date keeps every term in (0, 1] (events after it never count), and running
        sums within a group (not across groups) keep the sums exact to float precision.
        ``weight`` None means every event weighs 1 (and the sort is a plain sort of packed keys)."""
        composite = group.astype(np.int64) * _SHIFT + seconds
        if weight is None:
            composite = np.sort(composite)
        else:
            order = np.argsort(composite, kind="stable")
            composite, weight = composite[order], weight[order]
        half_life_s = half_life_days * DAY_S
        decay_sum = np.zeros(0)
        if decay:
            group, seconds = composite // _SHIFT, composite % _SHIFT
            offset = seconds - reference[group]
            with np.errstate(under="ignore"):
                scaled = np.where(offset <= 0, np.exp2(np.minimum(offset, 0) / half_life_s), 0.0)
            if weight is not None:
                scaled *= weight
            decay_sum = pd.Series(scaled).groupby(group, sort=False).cumsum().to_numpy()
        return cls(composite, decay_sum, reference, half_life_s)

    def position(self, group: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Index of the first event of ``group`` at or after ``seconds`` (everything before it is earlier).
        Queries sorted by group keep the binary searches cache-friendly."""
        return np.searchsorted(self.composite, group * _SHIFT + np.maximum(seconds, 0), side="left")

    def days_since_last(self, end: np.ndarray, start: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """From the positions of the as-of date (``end``) and of the group's start."""
        last = self.composite[np.maximum(end - 1, 0)] % _SHIFT if len(self.composite) else np.zeros(len(end))
        return np.where(end > start, np.floor((as_of - last) / DAY_S), NO_ACTIVITY_DAYS)

    def decayed(self, group: np.ndarray, end: np.ndarray, start: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """Sum over events before ``as_of`` of weight * 0.5 ** (age / half-life)."""
        total = self.decay_sum[np.maximum(end - 1, 0)] if len(self.decay_sum) else np.zeros(len(end))
        with np.errstate(over="ignore", invalid="ignore"):
            value = total * np.exp2((self.reference[group] - as_of) / self.half_life_s)
        return np.where(end > start, value, 0.0)


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent or missing), hashing each distinct value once.
    A categorical column (as ingest writes event keys and types) costs only its categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        mapped = index.get_indexer(pd.Index(values.cat.categories.astype(str)))
    else:
        codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
        mapped = index.get_indexer(pd.Index(uniques.astype(str)))
    if len(mapped) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    return np.where(codes >= 0, mapped[np.maximum(codes, 0)], -1)


def _latest(group: np.ndarray, as_of: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the latest as-of date (seconds) among the records in it."""
    latest = np.zeros(n_groups, dtype=np.int64)
    has = group >= 0
    np.maximum.at(latest, group[has], as_of[has])
    return latest


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[s]").view(np.int64)


def intent_features(
    keys: pd.Series, as_of: pd.Series, events: pd.DataFrame, *, types: list[str], windows: list[int],
    half_life_days: float = 30.0, weights: Mapping[str, float] | None = None,
    accounts: pd.Series | None = None, event_accounts: pd.Series | None = None,
) -> pd.DataFrame:
    """Intent features for each record, aligned with ``keys`` (each record's event key).

    ``accounts`` (each record's account) and ``event_accounts`` (each event's account, aligned
    with ``events``) add the account-level roll-up.
    """
    with_accounts = accounts is not None and event_accounts is not None
    names = [s.name for s in intent_specs(types, windows, accounts=with_accounts)]
    if not len(keys):
        return pd.DataFrame(columns=names, index=keys.index, dtype=float)
    key_index = pd.Index(keys.dropna().astype(str).unique())
    event_key = _codes(events["event_key"], key_index)
    type_code = _codes(events["event_type"], pd.Index(types))
    t0 = int(_epoch_seconds(events["timestamp"]).min()) if len(events) else 0
    seconds = _epoch_seconds(events["timestamp"]) - t0 if len(events) else np.zeros(0, dtype=np.int64)
    uniform = not any(float(w) != 1.0 for w in (weights or {}).values())
    weight = None
    if not uniform:
        weight_of = np.array([float((weights or {}).get(t, 1.0)) for t in types] + [1.0])  # last: other types
        weight = weight_of[np.where(type_code >= 0, type_code, len(types))]

    # Work in the order of the records' groups, so that every binary search walks forward.
    record_key = _codes(keys, key_index)
    order = np.argsort(record_key, kind="stable")
    rk_sorted = record_key[order]
    has_key = rk_sorted >= 0
    rk = np.maximum(rk_sorted, 0)
    as_of_s = _epoch_seconds(as_of)[order] - t0
    n_types = len(types)
    key_reference = _latest(record_key, _epoch_seconds(as_of) - t0, len(key_index))

    by_type = (event_key >= 0) & (type_code >= 0)
    typed = _Timeline.build(event_key[by_type] * n_types + type_code[by_type], seconds[by_type], None,
                            reference=key_reference, half_life_days=half_life_days, decay=False)
    bounds = sorted({0, TREND_DAYS, 2 * TREND_DAYS, *windows})
    columns: dict[str, np.ndarray] = {}
    for j, t in enumerate(types):
        group = rk * n_types + j
        pos = {days: typed.position(group, as_of_s - days * DAY_S) for days in bounds}
        start = typed.position(group, np.zeros_like(as_of_s))
        for w in windows:
            columns[f"evt_{t}_{w}d"] = np.where(has_key, pos[0] - pos[w], 0).astype(float)
        trend = (pos[0] - pos[TREND_DAYS]) - (pos[TREND_DAYS] - pos[2 * TREND_DAYS])
        columns[f"evt_{t}_trend"] = np.where(has_key, trend, 0).astype(float)
        columns[f"evt_{t}_days_since"] = np.where(has_key, typed.days_since_last(pos[0], start, as_of_s),
                                                  NO_ACTIVITY_DAYS)
    del typed
    known = event_key >= 0
    overall = _Timeline.build(event_key[known], seconds[known], None if weight is None else weight[known],
                              reference=key_reference, half_life_days=half_life_days)
    end, start = overall.position(rk, as_of_s), overall.position(rk, np.zeros_like(as_of_s))
    columns["days_since_last_event"] = np.where(has_key, overall.days_since_last(end, start, as_of_s),
                                                NO_ACTIVITY_DAYS)
    columns["engagement_score"] = np.where(has_key, overall.decayed(rk, end, start, as_of_s), 0.0)
    del overall

    if with_accounts:
        assert accounts is not None and event_accounts is not None
        account_index = pd.Index(accounts.dropna().astype(str).unique())
        record_account = _codes(accounts, account_index)[order]
        event_account = _codes(event_accounts, account_index)
        has_account = record_account >= 0
        ra = np.maximum(record_account, 0)
        mask = event_account >= 0
        account = _Timeline.build(event_account[mask], seconds[mask], None if weight is None else weight[mask],
                                  reference=_latest(record_account, as_of_s, len(account_index)),
                                  half_life_days=half_life_days)
        # Account queries are not sorted by account: sort them too, then put results back.
        by_account = np.argsort(ra, kind="stable")
        ra_s, as_s = ra[by_account], as_of_s[by_account]
        end = account.position(ra_s, as_s)
        start = account.position(ra_s, np.zeros_like(as_s))
        back = np.empty_like(by_account)
        back[by_account] = np.arange(len(by_account))
        for w in windows:
            since = account.position(ra_s, as_s - w * DAY_S)
            columns[f"acct_events_{w}d"] = np.where(has_account, (end - since)[back], 0).astype(float)
        columns["acct_engagement_score"] = np.where(
            has_account, account.decayed(ra_s, end, start, as_s)[back], 0.0)

    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pd.DataFrame({name: columns[name][inverse] for name in names}, index=keys.index)
