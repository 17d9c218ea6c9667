"""Intent features, point in time: activity strictly before each deal's as-of date.

For every event type: counts in each window (e.g. 7/30/90 days), plus days since the last
event of any type. An event at or after the as-of instant never counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.spec import FeatureSpec
from pipeline.schema import EVENT_TYPES

NO_ACTIVITY_DAYS = 9999.0  # days since last event when there is none before the as-of date


def _label(event_type: str) -> str:
    return event_type.replace("_", " ").capitalize()


def intent_specs(windows: list[int]) -> list[FeatureSpec]:
    specs = [
        FeatureSpec(f"evt_{t}_{w}d", "numeric", "intent", t, f"{_label(t)} events in the last {w} days")
        for t in EVENT_TYPES for w in windows
    ]
    specs.append(FeatureSpec("days_since_last_event", "numeric", "intent", "activity",
                             "Days since the last activity"))
    return specs


def intent_features(deals: pd.DataFrame, events: pd.DataFrame, *, windows: list[int]) -> pd.DataFrame:
    """Counts per event type and window for each deal, aligned with ``deals``."""
    n, n_types = len(deals), len(EVENT_TYPES)
    pos = pd.DataFrame({"lead_id": deals["lead_id"].to_numpy(), "row": np.arange(n),
                        "as_of": deals["as_of"].to_numpy()})
    ev = events[["lead_id", "event_type", "timestamp"]].merge(pos, on="lead_id", how="inner")
    age_days = (ev["as_of"] - ev["timestamp"]).dt.total_seconds().to_numpy() / 86_400.0
    before = age_days > 0
    row = ev["row"].to_numpy()[before]
    age = age_days[before]
    code = pd.Categorical(ev["event_type"], categories=EVENT_TYPES).codes[before].astype(np.int64)
    valid = code >= 0
    row, age, code = row[valid], age[valid], code[valid]

    columns: dict[str, np.ndarray] = {}
    cell = row * n_types + code
    for w in windows:
        counts = np.bincount(cell[age <= w], minlength=n * n_types).reshape(n, n_types)
        for j, t in enumerate(EVENT_TYPES):
            columns[f"evt_{t}_{w}d"] = counts[:, j].astype(float)
    last = np.full(n, np.inf)
    np.minimum.at(last, row, age)
    columns["days_since_last_event"] = np.where(np.isinf(last), NO_ACTIVITY_DAYS, np.floor(last))
    ordered = [s.name for s in intent_specs(windows)]
    return pd.DataFrame(columns, index=deals.index)[ordered]
