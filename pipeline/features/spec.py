"""The feature spec: what each model column is, where it comes from, and what a rep calls it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["numeric", "categorical"]
Role = Literal["firmographic", "contact", "intent", "qualification", "deal"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str       # column in the feature matrix
    kind: Kind
    role: Role
    source: str     # the canonical field a rep knows it by
    label: str      # rep-facing wording, e.g. "Pricing page visits in the last 7 days"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def categorical_names(specs: list[FeatureSpec]) -> list[str]:
    return [s.name for s in specs if s.kind == "categorical"]
