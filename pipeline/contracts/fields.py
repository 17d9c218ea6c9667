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
