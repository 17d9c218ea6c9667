"""The records contract between ingest and features: outcomes, canonical fields, declared fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OUTCOME_WON, OUTCOME_LOST, OUTCOME_OPEN = "won", "lost", "open"

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


# Names the pipeline gives columns of its own in the records and the feature matrix: a mapped field
# named like one would overwrite it (or be overwritten), so the mapping may not use them.
# tests/features/test_reserved_names.py checks that every column the pipeline derives is listed.
RESERVED_NAMES: dict[str, str] = {
    **dict.fromkeys(("record_id", "outcome", "decision_date", "created_date", "event_key", "account_key"),
                    "a key column of the records"),
    **dict.fromkeys(("label", "as_of"), "a key column of the feature matrix"),
    **dict.fromkeys(("seniority", "department"), "a feature derived from job_title"),
    "company_size_band": "a feature derived from employees",
    "revenue_band": "a feature derived from annual_revenue",
    "region": "a feature derived from country",
    "company_age_years": "a feature derived from founded_year",
    "is_subsidiary": "a feature derived from parent_company",
    "budget_to_deal_size": "a feature derived from stated_budget and amount",
    **dict.fromkeys(("days_since_last_event", "engagement_score"), "an activity feature"),
    **dict.fromkeys(("icp_fit", "icp_matched", "icp_missed"), "the ideal customer profile's fit"),
    "framework_points": "the qualification framework's points",
}
RESERVED_PREFIXES: dict[str, str] = {"evt_": "activity features", "acct_": "account activity features",
                                     "fw_": "qualification framework features"}


def reserved_use(name: str) -> str | None:
    """What the pipeline uses ``name`` for, or None when a field may take it."""
    if name in RESERVED_NAMES:
        return RESERVED_NAMES[name]
    prefix = next((p for p in RESERVED_PREFIXES if name.startswith(p)), None)
    return f"the prefix of {RESERVED_PREFIXES[prefix]}" if prefix else None


@dataclass(frozen=True)
class FieldInfo:
    """A declared field as ingest typed it: what features are built from."""

    name: str
    kind: str
    role: str
    label: str
    table: str
    column: str
    # A categorical field's values as the CRM spells them (the most frequent original spelling of
    # each folded value), for display only: features and the model see the folded values.
    spellings: dict[str, str] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        if self.spellings is None:
            del out["spellings"]
        return out
