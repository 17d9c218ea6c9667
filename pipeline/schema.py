"""Names shared by the stages: the synthetic export's columns, canonical fields, outcomes and file names."""

from __future__ import annotations

# The columns of the synthetic export, per table (pipeline/sources/synthetic.yaml maps them).
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

# Canonical fields: a mapping may name a field after one of these to get its kind, role and
# rep-facing label by default, and the derived features that go with it (company age from
# founded_year, seniority and department from job_title, ...). Any other field name works too,
# with its kind and role declared. (name -> (kind, role, label))
CANONICAL_FIELDS: dict[str, tuple[str, str, str]] = {
    "employees": ("numeric", "firmographic", "Company size (employees)"),
    "annual_revenue": ("numeric", "firmographic", "Annual revenue"),
    "industry": ("categorical", "firmographic", "Industry"),
    "country": ("categorical", "firmographic", "Country"),
    "founded_year": ("numeric", "firmographic", "Company age"),
    "parent_company": ("text", "firmographic", "Part of a larger group"),
    "job_title": ("text", "contact", "Contact's job title"),
    "lead_source": ("categorical", "contact", "Lead source"),
    "stated_budget": ("numeric", "qualification", "Stated budget"),
    "purchase_timeline": ("categorical", "qualification", "Purchase timeline"),
    "stated_need": ("categorical", "qualification", "Stated need"),
    "amount": ("numeric", "deal", "Deal size"),
}

OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN = "won", "lost", "open"

QUARANTINE_FILE = "quarantine.csv"
FIELDS_FILE = "fields.json"
RECORDS_FILE = "records.parquet"
EVENTS_FILE = "events.parquet"
EVENT_ACCOUNTS_FILE = "event_accounts.parquet"
INGEST_REPORT_FILE = "ingest_report.json"
FEATURES_FILE = "features.parquet"
FEATURE_SPEC_FILE = "feature_spec.json"
MODEL_FILE = "model.txt"
MODEL_META_FILE = "model_meta.json"
TRUTH_FILE = "truth.parquet"
SCORES_CSV = "scores.csv"
SCORES_PARQUET = "scores.parquet"

