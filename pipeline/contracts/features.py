"""The feature contract between the features stage and everything after it: each model column's
spec, the matrix with its keys, and the two files that hold them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from pipeline.contracts.files import FEATURE_SPEC_FILE, FEATURES_FILE, RECIPE_FILE
from pipeline.errors import DataError
from pipeline.io.files import atomic_path, read_json, write_json

Kind = Literal["numeric", "categorical"]
Role = Literal["firmographic", "contact", "intent", "qualification", "deal"]

# Columns of the feature matrix that are not features.
KEY_COLUMNS = ["record_id", "outcome", "label", "as_of"]
# The value of a "days since" intent feature when there was no such activity before the as-of date.
NO_ACTIVITY_DAYS = 9999.0
# Qualification framework columns: fw_<criterion> (met / not_met / unknown), fw_<criterion>_reason
# (the rep-facing line with the value), and the count of criteria met.
FRAMEWORK_PREFIX = "fw_"
REASON_SUFFIX = "_reason"
FRAMEWORK_POINTS = "framework_points"


def criterion_column(key: str) -> str:
    """The feature-matrix column of a framework criterion's status: budget -> fw_budget."""
    return f"{FRAMEWORK_PREFIX}{key}"


def reason_column(column: str) -> str:
    """The column holding the rep-facing reason of a criterion column: fw_budget -> fw_budget_reason."""
    return f"{column}{REASON_SUFFIX}"


@dataclass(frozen=True)
class FeatureSpec:
    name: str       # column in the feature matrix
    kind: Kind
    role: Role
    source: str     # the canonical field a rep knows it by
    label: str      # rep-facing wording, e.g. "Pricing page visits in the last 7 days"
    # A categorical feature's levels as a rep reads them: the CRM's own spelling ("brazil" -> "Brazil")
    # or words for a code ("c_level" -> "C-level"). Display only: the model sees the levels themselves.
    levels: dict[str, str] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.levels is None:
            del out["levels"]
        return out

    def shown(self, value: str) -> str:
        """A level as a rep reads it: its display form, else the value with underscores as spaces."""
        return (self.levels or {}).get(value) or value.replace("_", " ")


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix (keys, outcome, label, features, and rep-facing detail such as framework
    reasons) and the spec of each feature the model may use."""

    matrix: pd.DataFrame
    specs: list[FeatureSpec]
    report: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] | None = None   # how it was made from the export (pipeline.features.recipe)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def write_feature_set(features: FeatureSet, out_dir: Path) -> None:
    with atomic_path(out_dir / FEATURES_FILE) as tmp:
        features.matrix.to_parquet(tmp, index=False)
    write_json(out_dir / FEATURE_SPEC_FILE, [s.as_dict() for s in features.specs])
    if features.recipe is not None:
        write_json(out_dir / RECIPE_FILE, features.recipe)
    else:
        (out_dir / RECIPE_FILE).unlink(missing_ok=True)


def read_feature_set(out_dir: Path) -> FeatureSet:
    matrix_path, spec_path = out_dir / FEATURES_FILE, out_dir / FEATURE_SPEC_FILE
    for path in (matrix_path, spec_path):
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore features` first")
    specs = [FeatureSpec(**s) for s in read_json(spec_path)]
    recipe_path = out_dir / RECIPE_FILE
    recipe = read_json(recipe_path) if recipe_path.exists() else None
    return FeatureSet(matrix=pd.read_parquet(matrix_path), specs=specs, recipe=recipe)
