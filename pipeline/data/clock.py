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


def export_clock(dates: list[np.ndarray | pd.Series], *, params: ClockParams) -> ExportClock | None:
    """The clock of an export whose rows carry ``dates`` (created, closed, event times; NaT ignored).
    None when it has no dates at all and declares none."""
    if params.export_date is not None:
        return declared_clock(pd.Timestamp(params.export_date) + pd.Timedelta(days=1),
                              rule="declared: source.clock.export_date")
    values = np.sort(np.concatenate([_as_us(d) for d in dates])) if dates else np.array([], dtype=np.int64)
    if not len(values):
        return None
    days = values // _DAY_US
    set_aside = min(len(days) - 1, max(params.outlier_rows, math.ceil(params.outlier_share * len(days))))
    later = np.unique(days[len(days) - 1 - set_aside:])
    breaks = np.flatnonzero(np.diff(later) > params.max_gap_days)
    clock_day = int(later[breaks[0]] if len(breaks) else later[-1])
    instant = pd.Timestamp(np.datetime64((clock_day + 1) * _DAY_US, "us"))
    latest = pd.Timestamp(np.datetime64(int(values[-1]), "us"))
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
