"""What would raise a score: activities a rep can cause, added now, as many as a typical won deal has."""

import numpy as np
import pandas as pd

from pipeline.config import ScoreParams
from pipeline.errors import ConfigError
from pipeline.explain.text import counted, joined
from pipeline.scoring.raising import Activity, shortfall, with_events

DEMO = Activity(event="demo_request", group=0, counts=["evt_demo_request_7d", "evt_demo_request_30d"],
                trend="evt_demo_request_trend", days_since="evt_demo_request_days_since", weight=3.0)


def test_new_events_move_the_activity_and_everything_derived_from_all_activity() -> None:
    x = pd.DataFrame({"evt_demo_request_7d": [0.0, 1.0], "evt_demo_request_30d": [0.0, 2.0],
                      "evt_demo_request_trend": [0.0, 1.0], "evt_demo_request_days_since": [9999.0, 4.0],
                      "days_since_last_event": [12.0, 4.0], "engagement_score": [0.5, 2.0],
                      "acct_events_30d": [3.0, 5.0], "employees": [50.0, 80.0]})
    typical = {"evt_demo_request_7d": 1.0, "evt_demo_request_30d": 1.5}
    k = shortfall(x, DEMO, typical)
    assert k.tolist() == [2, 0]  # the largest shortfall, rounded up; none for a lead with as many
    out = with_events(x, [(DEMO, k)])
    assert out["evt_demo_request_7d"].tolist() == [2.0, 1.0] and out["evt_demo_request_30d"].tolist() == [2.0, 2.0]
    assert out["evt_demo_request_days_since"].tolist() == [0.0, 4.0]
    assert out["days_since_last_event"].tolist() == [0.0, 4.0]
    assert out["engagement_score"].tolist() == [6.5, 2.0]  # two events now, weight 3 each
    assert out["acct_events_30d"].tolist() == [5.0, 5.0]
    assert out["employees"].equals(x["employees"])  # never a firmographic
    assert x["evt_demo_request_7d"].tolist() == [0.0, 1.0]  # the caller's frame is untouched


def test_moves_are_worded_as_actions_and_the_threshold_is_validated() -> None:
    items = [counted(2, "pricing-page visit", "pricing-page visits"), counted(1, "demo request", "demo requests"),
             counted(1, "email open", "email opens")]
    assert joined(items) == "2 pricing-page visits, a demo request and an email open"
    assert ScoreParams().raise_min_points == 5
    for bad in (0, 101):
        try:
            ScoreParams(raise_min_points=bad)
        except (ValueError, ConfigError):
            continue
        raise AssertionError(f"raise_min_points={bad} was accepted")
    assert np.isfinite(ScoreParams(raise_min_points=1).raise_min_points)
