"""Scored leads for the web app's tests: a scores.parquet as the score stage writes one (display
columns included), made directly so no pipeline run is needed, and a feedback database with users."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.feedback import FeedbackStore

EVIL = "<script>alert(1)</script>"
OWNERS = ("Ana Lima", "Ben Okafor", "Chloé Martin")
REASONS = {"agree": ["strong fit", "right timing"], "disagree": ["not a fit", "no budget", "timing wrong"]}
PASSWORDS = {"ana": "ana-secret-1", "ben": "ben-secret-2", "maria": "maria-secret-3"}


def scores_frame(n: int, *, seed: int = 7) -> pd.DataFrame:
    """``n`` scored leads, sorted by score as the stage writes them; lead 0 is Ana's and named EVIL."""
    rng = np.random.default_rng(seed)
    score = rng.integers(1, 100, n)
    grade = np.select([score >= 75, score >= 50, score >= 25], ["A", "B", "C"], "D")
    step = np.select([score >= 60, score >= 10], ["sales_ready", "nurture"], "disqualify")
    moved = np.where(rng.random(n) < 0.3, rng.integers(-20, 21, n), 0)
    reasons_for = json.dumps([{"text": "Pricing page views: 4 in the last 7 days", "contribution": 0.42}])
    reasons_against = json.dumps([{"text": "No demo request yet", "contribution": -0.2}])
    frame = pd.DataFrame({
        "record_id": [f"D{i:07d}" for i in range(n)],
        "company": [f"Company {i} Ltd" for i in range(n)],
        "contact_name": [f"Contact {i}" for i in range(n)],
        "contact_title": "VP Sales",
        "owner": [OWNERS[i % len(OWNERS)] for i in range(n)],
        "contact_email": [f"c{i}@example.com" for i in range(n)],
        "crm_link": [f"https://crm.example.com/deals/D{i:07d}" for i in range(n)],
        "probability": score / 100, "score": score, "grade": grade, "next_step": step,
        "next_step_rule": "Sales ready: the score is at least 60",
        "reasons_for": reasons_for, "reasons_against": reasons_against, "what_would_raise_detail": "[]",
        "checklist": "[]", "model_version": "lgbm-test", "registry_version": "1", "model_status": "champion",
        "as_of": "2025-12-31", "scored_at": "2025-12-31T00:00:00Z",
        "score_change": pd.array(np.where(moved != 0, moved, pd.NA), dtype="Int64"),
        "trend": "steady", "change_reason": None,
    })
    frame.loc[0, "company"] = EVIL
    frame.loc[0, "score"] = 99
    frame.loc[0, ["grade", "next_step"]] = ["A", "sales_ready"]
    return frame.sort_values(["score", "record_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def write_scores(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def feedback_store(path: Path) -> FeedbackStore:
    store = FeedbackStore.open(f"sqlite:///{path}", reasons=REASONS)
    store.add_user("ana", password=PASSWORDS["ana"], owner="Ana Lima")
    store.add_user("ben", password=PASSWORDS["ben"], owner="Ben Okafor")
    store.add_user("maria", password=PASSWORDS["maria"], owner="Maria Rossi", role="manager")
    return store


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return feedback_store(tmp_path / "feedback.db")
