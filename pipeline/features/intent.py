"""Intent features, point in time: activity strictly before each record's as-of date.

For each event type (the most frequent ``max_event_types`` in the log): counts in each window
(e.g. 7/30/90 days), plus days since the last event of any type. An event at or after the
as-of instant never counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.spec import FeatureSpec

NO_ACTIVITY_DAYS = 9999.0  # days since the last event when there is none before the as-of date


def event_types(events: pd.DataFrame, *, limit: int) -> list[str]:
    """The ``limit`` most frequent event types (ties by name), in alphabetical order."""
    counts = events["event_type"].astype("string").value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(str(t) for t, _ in ordered[:limit])


def _label(event_type: str) -> str:
    return event_type.replace("_", " ").capitalize()


def intent_specs(types: list[str], windows: list[int]) -> list[FeatureSpec]:
    specs = [
        FeatureSpec(f"evt_{t}_{w}d", "numeric", "intent", t, f"{_label(t)} events in the last {w} days")
        for t in types for w in windows
    ]
    specs.append(FeatureSpec("days_since_last_event", "numeric", "intent", "activity", "Days since the last activity"))
    return specs


def intent_features(
    keys: pd.Series, as_of: pd.Series, events: pd.DataFrame, *, types: list[str], windows: list[int],
) -> pd.DataFrame:
    """Counts per event type and window for each record (``keys`` = its event key), aligned with ``keys``."""
    n, n_types = len(keys), len(types)
    pos = pd.DataFrame({"event_key": keys.astype("string").to_numpy(), "row": np.arange(n),
                        "as_of": as_of.to_numpy()})
    ev = events[["event_key", "event_type", "timestamp"]].astype({"event_key": "string"}).merge(
        pos.dropna(subset=["event_key"]), on="event_key", how="inner")
    age_days = (ev["as_of"] - ev["timestamp"]).dt.total_seconds().to_numpy() / 86_400.0
    before = age_days > 0
    code = pd.Categorical(ev["event_type"].astype("string"), categories=types).codes.astype(np.int64)
    row, age = ev["row"].to_numpy()[before], age_days[before]
    code = code[before]

    columns: dict[str, np.ndarray] = {}
    known = code >= 0
    cell = row[known] * n_types + code[known]
    age_known = age[known]
    for w in windows:
        counts = np.bincount(cell[age_known <= w], minlength=n * n_types).reshape(n, n_types)
        for j, t in enumerate(types):
            columns[f"evt_{t}_{w}d"] = counts[:, j].astype(float)
    last = np.full(n, np.inf)
    np.minimum.at(last, row, age)
    columns["days_since_last_event"] = np.where(np.isinf(last), NO_ACTIVITY_DAYS, np.floor(np.where(
        np.isinf(last), 0, last)))
    return pd.DataFrame(columns, index=keys.index)[[s.name for s in intent_specs(types, windows)]]
