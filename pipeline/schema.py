"""Canonical names shared by the stages: tables, columns, event types and file names.

The synthetic export is written in these columns, and ingest validates them. Later sources map
their own columns onto the same canonical fields.
"""

from __future__ import annotations

from pathlib import Path

TABLES = ("accounts", "leads", "deals", "events")

ACCOUNT_COLUMNS = (
    "account_id", "company_name", "industry", "employees", "annual_revenue",
    "country", "founded_year", "parent_company",
)
LEAD_COLUMNS = (
    "lead_id", "account_id", "first_name", "last_name", "email", "job_title", "lead_source",
    "created_date", "stated_budget", "purchase_timeline", "stated_need",
)
DEAL_COLUMNS = (
    "deal_id", "lead_id", "created_date", "closed_date", "stage", "amount", "csm_assigned",
)
EVENT_COLUMNS = ("event_id", "lead_id", "event_type", "timestamp")

COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ACCOUNT_COLUMNS,
    "leads": LEAD_COLUMNS,
    "deals": DEAL_COLUMNS,
    "events": EVENT_COLUMNS,
}

# Canonical event types, in the order feature columns are built. The export writes them as
# human-readable labels ("Pricing Page View"); ingest folds a label to snake_case.
EVENT_TYPES = (
    "pricing_page_view", "demo_request", "webinar_attended", "content_download",
    "email_click", "email_open", "blog_view",
)

# Columns that are filled in only after a deal closes. They predict the outcome perfectly and
# must never become features.
OUTCOME_DERIVED = frozenset({"closed_date", "csm_assigned"})
# Personal data: never a feature.
PII = frozenset({"first_name", "last_name", "email"})

OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN = "won", "lost", "open"

QUARANTINE_FILE = "quarantine.csv"
INGEST_REPORT_FILE = "ingest_report.json"
FEATURES_FILE = "features.parquet"
FEATURE_SPEC_FILE = "feature_spec.json"
MODEL_FILE = "model.txt"
MODEL_META_FILE = "model_meta.json"
TRUTH_FILE = "truth.parquet"
SCORES_CSV = "scores.csv"
SCORES_PARQUET = "scores.parquet"


def raw_file(raw_dir: Path, table: str, fmt: str) -> Path:
    return raw_dir / f"{table}.{fmt}"


def find_raw_file(raw_dir: Path, table: str) -> Path | None:
    """The export file for ``table``: CSV or Parquet, whichever exists."""
    for fmt in ("csv", "parquet"):
        path = raw_file(raw_dir, table, fmt)
        if path.exists():
            return path
    return None
