"""Why a score changed: with the same model the group changes add up to the raw-score change, the
points to the score change; a change of model is split into the model's part and the lead's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.config import HistoryParams
from pipeline.modeling.model import load_model
from pipeline.modeling.train import save_model
from pipeline.scoring.change import ADDITIVITY_TOLERANCE, trend, whole_points
from pipeline.scoring.history import History, Previous
from pipeline.scoring.scorer import Tracking
from tests.conftest import PARAMS_SHA256, scorer_for, train_on

T1, T2 = "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"


def _run(scorer, rows: pd.DataFrame, history: History, scored_at: str, *, old=None) -> tuple[pd.DataFrame, Tracking]:
    track = Tracking(previous=Previous.of(history, scored_at=scored_at, runs=4),
                     old=old or (lambda version, registry_version: (None, "no previous model in this test")),
                     params=HistoryParams(), model_name="leadscore-synthetic", job="export")
    frame = scorer.score(rows, scored_at=scored_at, detail=True, track=track)
    history.append(pa.concat_tables(track.tables), scored_at=scored_at)
    return frame, track


def _residuals(history: History) -> np.ndarray:
    """Per lead scored twice by one model: |sum of group changes - raw-score change| from the stored runs."""
    first, second = (history.read_run(r).to_pandas().set_index("record_id") for r in history.runs()[-2:])
    both = first.index.intersection(second.index)

    def groups(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([dict(m) for m in frame.loc[both, "contributions"]], index=both)

    delta = (groups(second) - groups(first)).sum(axis=1)
    return np.abs(delta - (second.loc[both, "raw_score"] - first.loc[both, "raw_score"])).to_numpy()


def test_same_model_changes_add_up_and_name_the_group_that_moved(small, models_dir: Path, open_rows,
                                                                   tmp_path: Path) -> None:
    model = load_model(models_dir)
    scorer = scorer_for(model, small.settings)
    history = History(tmp_path / "history", "leadscore-synthetic")
    rows = open_rows.head(300).copy()
    first, _ = _run(scorer, rows, history, T1)
    assert (first["trend"] == "new").all() and first["previous_score"].isna().all()
    assert (first["change_reason"] == "").all()
    # A week later: one lead requested a demo (its demo-request features say so), the others aged a little.
    later = rows.copy()
    demo = [c for c in later.columns if c.startswith("evt_demo_request_") and c.endswith("d")]
    lead = later.index[0]
    later.loc[lead, demo] = later.loc[lead, demo] + 2
    later.loc[lead, "evt_demo_request_days_since"] = 1.0
    second, track = _run(scorer, later, history, T2)
    assert track.worst_residual <= ADDITIVITY_TOLERANCE
    assert _residuals(history).max() <= ADDITIVITY_TOLERANCE
    moved = second.set_index("record_id").loc[rows.loc[lead, "record_id"]]
    assert int(moved["score_change"]) == int(moved["score"]) - int(moved["previous_score"]) > 0
    detail = json.loads(moved["change_detail"])
    assert detail["groups"][0]["group"] == "Demo requests"
    assert sum(g["points"] for g in detail["groups"]) == pytest.approx(detail["data_points"], abs=1e-2)
    assert moved["change_reason"].startswith(f"{int(moved['previous_score'])} \u2192 {int(moved['score'])} since "
                                             "2026-01-05: Demo requests +")
    unchanged = second[second["score_change"] == 0]
    assert len(unchanged) and unchanged["change_reason"].str.startswith("unchanged (").all()
    assert set(second["trend"]) <= {"improving", "steady", "declining"}


def test_a_change_of_model_is_split_into_the_models_part_and_the_leads_own(small, small_model, models_dir: Path,
                                                                           open_rows, tmp_path: Path) -> None:
    old_model = load_model(models_dir)
    new_dir = tmp_path / "new"
    save_model(train_on(small, num_leaves=8, learning_rate=0.1), new_dir, params_sha256=PARAMS_SHA256)
    new_model = load_model(new_dir)
    assert new_model.version != old_model.version
    history = History(tmp_path / "history", "leadscore-synthetic")
    rows = open_rows.head(200)
    _run(scorer_for(old_model, small.settings), rows, history, T1)
    old_scorer = scorer_for(old_model, small.settings)

    def old(version: str, registry_version: str | None):
        assert version == old_model.version
        return old_scorer.explained, ""

    second, track = _run(scorer_for(new_model, small.settings), rows, history, T2, old=old)
    details = [json.loads(d) for d in second["change_detail"]]
    assert all(d["model_changed"] for d in details)
    # The same data: the lead's own part is nothing, the whole change is the new model's.
    assert all(d["data_points"] == 0 and d["model_points"] == d["to"] - d["from"] for d in details)
    assert second["change_reason"].str.contains(f"new model {new_model.version} \\(was {old_model.version}\\)").all()
    assert track.worst_residual <= ADDITIVITY_TOLERANCE
    # Without the previous model's files the change is shown whole, and says why.
    blind = History(tmp_path / "blind", "leadscore-synthetic")
    _run(scorer_for(old_model, small.settings), rows, blind, T1)
    whole, _ = _run(scorer_for(new_model, small.settings), rows, blind, T2,
                    old=lambda version, registry_version: (None, "its files are gone"))
    assert whole["change_reason"].str.endswith("cannot be told apart (its files are gone)").all()
    assert all(json.loads(d)["split"] is None for d in whole["change_detail"])


def test_trend_over_the_window() -> None:
    start = np.array([np.nan, 50, 50, 70, 60])
    now = np.array([50, 55, 46, 64, 56])
    assert trend(start, now, points=5).tolist() == ["new", "improving", "steady", "declining", "steady"]


def test_whole_points_add_up_to_the_points_moved(rng) -> None:
    totals = rng.integers(-30, 31, size=500)
    weights = rng.normal(size=(500, 12))
    shares = weights / weights.sum(axis=1, keepdims=True) * totals[:, None]
    whole = whole_points(shares, totals)
    assert (whole.sum(axis=1) == totals).all()
    assert (np.abs(whole - shares) < 1).all()
