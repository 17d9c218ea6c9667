"""The reps' values beside the model's in the scores files: the latest verdict, the sticky override
(with the model's value at override time) and the contacts, then ``final_next_step`` / ``final_grade``,
the rep's value where there is an override, else the model's. The model's own columns never change."""

from __future__ import annotations

import pandas as pd

from pipeline.feedback.store import REP_COLUMNS, FeedbackStore

FINAL_COLUMNS = ("final_next_step", "final_grade")
FEEDBACK_COLUMNS = (*REP_COLUMNS, *FINAL_COLUMNS)  # added to the scores, in this order, after the model's


def with_feedback(scores: pd.DataFrame, store: FeedbackStore | None) -> pd.DataFrame:
    """``scores`` (a new frame, in the same row order) with the rep columns (empty where a lead has no
    feedback, or every row with no database: ``store`` None) and the final next step and grade."""
    base = scores.drop(columns=[c for c in FEEDBACK_COLUMNS if c in scores.columns])
    table = store.table() if store is not None else pd.DataFrame(columns=["record_id", *REP_COLUMNS])
    found = table.set_index("record_id").reindex(base["record_id"].astype(str).to_numpy())
    out = base.copy()
    for column in REP_COLUMNS:
        values = found[column].to_numpy()
        out[column] = (pd.array(values, dtype="Int64") if column == "contacts"
                       else pd.array(values, dtype="string"))
    rep_step, rep_grade = out["rep_next_step"], out["rep_grade"]
    out["final_next_step"] = base["next_step"].where(rep_step.isna().to_numpy(), rep_step.astype(object).to_numpy())
    out["final_grade"] = base["grade"].where(rep_grade.isna().to_numpy(), rep_grade.astype(object).to_numpy())
    return out
