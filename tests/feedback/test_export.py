"""The scores files carry the reps' values beside the model's; a rerun of scoring keeps every override;
with no database the files are the model's columns plus empty rep columns, and no database is created."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import FeedbackParams
from pipeline.feedback import FEEDBACK_COLUMNS, REP_COLUMNS, FeedbackStore, with_feedback
from pipeline.stages.score import write_scores
from tests.feedback.conftest import REASONS


def _scores(seed: int, n: int = 40) -> pd.DataFrame:
    """A run of scoring: record_id, score, grade, next_step (a rerun: another seed moves every score)."""
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 101, n)
    return pd.DataFrame({
        "record_id": [f"D{i:04d}" for i in range(n)], "score": score,
        "grade": np.select([score >= 75, score >= 50, score >= 25], ["A", "B", "C"], "D"),
        "next_step": np.select([score >= 60, score >= 10], ["sales_ready", "nurture"], "disqualify"),
        "model_version": f"lgbm-{seed}",
    }).sort_values(["score", "record_id"], ascending=[False, True], kind="stable")


def test_without_a_database_the_rep_columns_are_empty_and_nothing_is_created(tmp_path: Path) -> None:
    db = tmp_path / "feedback" / "feedback.db"
    store = FeedbackStore.existing(FeedbackParams(reasons=REASONS), db=db)
    scores = _scores(1)
    out = with_feedback(scores, store)
    assert store is None and not db.parent.exists()
    assert list(out.columns) == [*scores.columns, *FEEDBACK_COLUMNS]
    pd.testing.assert_frame_equal(out[scores.columns], scores)
    assert out[list(REP_COLUMNS)].isna().all().all()
    assert (out["final_next_step"] == scores["next_step"]).all() and (out["final_grade"] == scores["grade"]).all()
    csv, parquet = write_scores(out, tmp_path / "scores")
    written = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert list(written.columns) == list(out.columns) and (written[list(REP_COLUMNS)] == "").all().all()
    assert pd.read_parquet(parquet)[list(REP_COLUMNS)].isna().all().all()


def test_a_rerun_of_scoring_keeps_every_override_beside_the_models_values(store: FeedbackStore, tmp_path: Path,
                                                                          clock) -> None:
    first = _scores(1)
    overridden = first.iloc[[0, 5, 17, 30]]
    for i, (_, row) in enumerate(overridden.iterrows()):
        step = "disqualify" if i % 2 else "sales_ready"
        store.set_override(row["record_id"], author="ana", next_step=step, grade="D" if i == 3 else None,
                           model_next_step=row["next_step"], model_grade=row["grade"], note=f"rep {i}")
    verdict_on = first.iloc[2]
    store.add_verdict(verdict_on["record_id"], author="maria", verdict="disagree", reason="no budget", note="=cmd()",
                      score=int(verdict_on["score"]), grade=verdict_on["grade"], next_step=verdict_on["next_step"],
                      model_version=verdict_on["model_version"])
    expected = store.table().set_index("record_id")
    run_1 = with_feedback(first, store)
    clock.tick(days=1)
    second = _scores(2)  # the next night: the model moves every lead
    run_2 = with_feedback(with_feedback(second, store), store)  # applying it twice changes nothing
    assert list(run_2.columns) == [*second.columns, *FEEDBACK_COLUMNS]
    for run, scores in ((run_1, first), (run_2, second)):
        pd.testing.assert_frame_equal(run[scores.columns], scores)  # the model's own columns, untouched
        by_id = run.set_index("record_id")
        for record_id, rep in expected.iterrows():
            got = by_id.loc[record_id]
            for column in REP_COLUMNS:
                assert got[column] == rep[column] or (pd.isna(got[column]) and rep[column] is None), column
            final_step = rep["rep_next_step"] or got["next_step"]
            assert got["final_next_step"] == final_step
            assert got["final_grade"] == (rep["rep_grade"] or got["grade"])
        untouched = ~by_id.index.isin(expected.index)
        assert (by_id.loc[untouched, "final_next_step"] == by_id.loc[untouched, "next_step"]).all()
    assert len(store.table()) == 5  # reading never wrote
    moved = run_2.set_index("record_id").loc[overridden["record_id"].iloc[0]]
    assert moved["override_model_next_step"] == first.iloc[0]["next_step"]  # the model's value at override time
    csv, _ = write_scores(run_2, tmp_path / "scores")
    written = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("record_id")
    row = written.loc[overridden["record_id"].iloc[1]]
    assert (row["next_step"], row["rep_next_step"], row["final_next_step"]) == (
        run_2.set_index("record_id").loc[overridden["record_id"].iloc[1], "next_step"], "disqualify", "disqualify")
    assert written.loc[verdict_on["record_id"], "rep_note"] == "'=cmd()"  # spreadsheet-safe, as every CSV cell


def test_clearing_an_override_gives_the_model_its_say_again(store: FeedbackStore) -> None:
    scores = _scores(3)
    lead = scores.iloc[0]
    store.set_override(lead["record_id"], author="ana", next_step="disqualify", model_next_step=lead["next_step"],
                       model_grade=lead["grade"])
    assert with_feedback(scores, store).iloc[0]["final_next_step"] == "disqualify"
    store.clear_override(lead["record_id"], author="ana")
    assert with_feedback(scores, store).iloc[0]["final_next_step"] == lead["next_step"]
