"""The reps' feedback: verdicts, sticky overrides and contacts in a real database (SQLite by default,
PostgreSQL by URL), their values beside the model's in the scores files, and who was right once the
leads close. Rep input never becomes a feature. See docs/feedback.md."""

from pipeline.feedback.export import FEEDBACK_COLUMNS, with_feedback
from pipeline.feedback.outcomes import evaluation_notes, feedback_notes, who_was_right
from pipeline.feedback.store import (
    NOTE_MAX,
    REP_COLUMNS,
    Contact,
    FeedbackFrames,
    FeedbackStore,
    LeadFeedback,
    Override,
    User,
    Verdict,
    feedback_url,
)

__all__ = ["FEEDBACK_COLUMNS", "NOTE_MAX", "REP_COLUMNS", "Contact", "FeedbackFrames", "FeedbackStore", "LeadFeedback",
           "Override", "User", "Verdict", "evaluation_notes", "feedback_notes", "feedback_url", "who_was_right",
           "with_feedback"]
