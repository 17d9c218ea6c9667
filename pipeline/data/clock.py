"""The export's clock: the instant its open leads are scored as of, from a rule a few bad dates can't move.

An export is a snapshot taken on some day. Every date in it should be on or before that day; one that
isn't (an event logged in 2099, a lead created 2150-01-01, a deal "closed" 9999-12-31 as a CRM
placeholder) is an error in that row, not news about the present. Taking the latest date as the
clock, as a naive reader does, lets one such row move the scoring instant for every open lead. So
the clock is, in order:

1. declared: ``source.clock.export_date`` (or ``--scored-at`` when scoring a night's export), or
2. found by a rule: set aside the latest ``outlier_share`` of the export's dates (at least
   ``outlier_rows`` of them), then walk forward from the latest date left through the later ones
   while each is within ``max_gap_days`` of the one before. The bulk of an export's dates is dense up
   to the day it was taken; an outlier sits alone, far past it.

Rows dated after the clock are quarantined with the reason by ingest; the clock, the rule that gave
it and the rows it set aside are in the ingest report, and the features report says what instant
the open leads were scored as of.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pipeline.config import ClockParams

_DAY_US = 86_400 * 10**6


@dataclass(frozen=True)
class ExportClock:
    """``instant``: open leads are scored as of it, and a row dated after it is from the future.
    ``rule`` says where it came from; ``latest_seen`` is the latest date the export held."""

    instant: pd.Timestamp
    rule: str
    latest_seen: pd.Timestamp | None = None

    @property
    def day(self) -> str:
        """The export's date as a reader says it: the day before a midnight instant."""
        instant = pd.Timestamp(self.instant)
        day = instant - pd.Timedelta(days=1) if instant == instant.normalize() else instant
        return day.strftime("%Y-%m-%d")

    def as_dict(self) -> dict[str, str | None]:
        out = asdict(self)
        out["instant"] = pd.Timestamp(self.instant).isoformat()
        out["latest_seen"] = pd.Timestamp(self.latest_seen).isoformat() if self.latest_seen is not None else None
        out["export_date"] = self.day
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, str | None]) -> ExportClock:
        latest = raw.get("latest_seen")
        return cls(instant=pd.Timestamp(str(raw["instant"])), rule=str(raw.get("rule", "")),
                   latest_seen=pd.Timestamp(latest) if latest else None)


def _as_us(values: np.ndarray | pd.Series) -> np.ndarray:
    array = pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[us]")
    return array[~np.isnat(array)].astype(np.int64)


@dataclass(frozen=True)
class DateCounts:
    """Dates as the clock's rule reads them: how many fall on each day (days since 1970, ascending),
    and the latest instant (microseconds). An activity log of 100M rows is counted a chunk at a time
    instead of held."""

    days: np.ndarray
    counts: np.ndarray
    latest_us: int | None

    @classmethod
    def of(cls, values: np.ndarray | pd.Series) -> DateCounts:
        """The counts of dates (NaT ignored)."""
        return cls.of_micros(_as_us(values))

    @classmethod
    def of_micros(cls, micros: np.ndarray) -> DateCounts:
        """The counts of instants given as microseconds since 1970 (none missing)."""
        if not len(micros):
            return cls(np.array([], dtype=np.int64), np.array([], dtype=np.int64), None)
        days = micros // _DAY_US
        low, high = int(days.min()), int(days.max())
        if high - low < 1 << 20:  # a span of dates up to 2,870 years: counted in one pass, not sorted
            counts = np.bincount(days - low)
            found = np.flatnonzero(counts)
            return cls(found + low, counts[found], int(micros.max()))
        unique, counts = np.unique(days, return_counts=True)
        return cls(unique, counts, int(micros.max()))

    @classmethod
    def merged(cls, parts: list[DateCounts]) -> DateCounts:
        days = np.concatenate([p.days for p in parts]) if parts else np.array([], dtype=np.int64)
        counts = np.concatenate([p.counts for p in parts]) if parts else np.array([], dtype=np.int64)
        unique, where = np.unique(days, return_inverse=True)
        latest = [p.latest_us for p in parts if p.latest_us is not None]
        return cls(unique, np.bincount(where, weights=counts, minlength=len(unique)).astype(np.int64),
                   max(latest) if latest else None)


def export_clock(dates: list[np.ndarray | pd.Series | DateCounts], *, params: ClockParams) -> ExportClock | None:
    """The clock of an export whose rows carry ``dates`` (created, closed, event times; NaT ignored).
    None when it has no dates at all and declares none."""
    if params.export_date is not None:
        return declared_clock(pd.Timestamp(params.export_date) + pd.Timedelta(days=1),
                              rule="declared: source.clock.export_date")
    counted = DateCounts.merged([d if isinstance(d, DateCounts) else DateCounts.of(d) for d in dates])
    total = int(counted.counts.sum())
    if not total or counted.latest_us is None:
        return None
    set_aside = min(total - 1, max(params.outlier_rows, math.ceil(params.outlier_share * total)))
    # The days of the latest set_aside + 1 dates: from the day holding the date at that rank on.
    first = int(np.searchsorted(np.cumsum(counted.counts), total - 1 - set_aside, side="right"))
    later = counted.days[first:]
    breaks = np.flatnonzero(np.diff(later) > params.max_gap_days)
    clock_day = int(later[breaks[0]] if len(breaks) else later[-1])
    instant = pd.Timestamp(np.datetime64((clock_day + 1) * _DAY_US, "us"))
    latest = pd.Timestamp(np.datetime64(counted.latest_us, "us"))
    rule = (f"found: the latest date reached from the bulk of the export's dates with no gap over "
            f"{params.max_gap_days} days (source.clock.max_gap_days); the latest "
            f"{params.outlier_share:.0%} (at least {params.outlier_rows}) set aside first")
    return ExportClock(instant=instant, rule=rule, latest_seen=latest)


def declared_clock(instant: pd.Timestamp, *, rule: str) -> ExportClock:
    return ExportClock(instant=pd.Timestamp(instant), rule=rule)


def after(values: pd.Series, clock: ExportClock) -> np.ndarray:
    """Which of ``values`` (dates; NaT never) are from the clock's instant on: on a day after the
    export's date, or (a declared instant) not before it."""
    parsed = pd.to_datetime(values).to_numpy(dtype="datetime64[us]")
    return ~np.isnat(parsed) & (parsed >= np.datetime64(pd.Timestamp(clock.instant).to_datetime64(), "us"))
