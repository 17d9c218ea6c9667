"""The model contract: ``model_meta.json``, written by train and read by evaluate, score and the registry.

:class:`ModelMeta` is everything scoring needs besides the LightGBM text (the feature spec, the
category levels, the calibration, the drift reference, values typical of won deals) and what
identifies the model (its sha256, the training data's, the params'). It is validated on load
(an unknown or missing key names itself), frozen, and the same bytes for the same data and params.

:class:`Provenance` (``provenance.json``) is when and from which commit a model was trained. It
lives beside the model but is not part of it: it differs on every run while the model bytes don't,
so it is no DVC output and does not enter the model's hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    model_serializer,
)

from pipeline.contracts.features import FeatureSpec
from pipeline.errors import ModelError
from pipeline.io.files import read_json, write_json

META_VERSION: Literal[1] = 1
SplitMethod = Literal["time", "stratified"]
CalibrationMethod = Literal["isotonic", "platt", "none"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SliceSummary(_Contract):
    """One slice of the closed records: how many, how many won, and the as-of dates they span."""

    rows: int
    won: int
    as_of_from: str | None
    as_of_to: str | None


class SplitSummary(_Contract):
    method: SplitMethod
    valid_fraction: float
    test_fraction: float
    train: SliceSummary
    valid: SliceSummary
    test: SliceSummary


class CalibrationMeta(_Contract):
    """A fitted calibration as plain numbers (see :class:`pipeline.modeling.calibration.Calibration`)."""

    method: CalibrationMethod
    params: dict[str, Any]
    chosen_by: dict[str, Any]


class DriftFeature(_Contract):
    """One feature's training distribution: shares per bin (quantile edges or levels) and missing."""

    name: str
    label: str
    kind: Literal["numeric", "categorical"]
    shares: list[float]
    missing: float
    edges: list[float] | None = None     # numeric
    levels: list[str] | None = None      # categorical

    @model_serializer(mode="wrap")
    def _without_the_other_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class DriftScore(_Contract):
    edges: list[float]
    range: tuple[float, float]
    shares: list[float]


class DriftReference(_Contract):
    """The training rows' distribution of every feature and of the score (pipeline.modeling.drift)."""

    version: int
    bins: int
    rows: int
    score: DriftScore
    features: list[DriftFeature]


class ModelMeta(_Contract):
    """``model_meta.json``: what a LightGBM text model needs to score, explain and be identified."""

    meta_version: Literal[1] = META_VERSION
    model_version: str                          # "lgbm-" + the first 12 hex digits of model_sha256
    model_sha256: str                           # of model.txt
    features: list[FeatureSpec]                 # the model's columns, in order
    category_levels: dict[str, list[str]]       # per categorical feature, its training levels
    best_iteration: int
    lightgbm_params: dict[str, Any]
    lightgbm_version: str
    split: SplitSummary
    valid_auc: float
    class_weight: Literal["none", "balanced"]
    tuning: dict[str, Any] | None               # the Optuna search, when train.tuning_trials > 0
    calibration: CalibrationMeta
    typical_won: dict[str, float | str | None]  # per feature, a value typical of won deals (what would raise it)
    drift_reference: DriftReference
    train_data_sha256: str                      # of the training rows' values
    params_sha256: str                          # of the params the train stage reads
    recipe: dict[str, Any] | None = None        # how its features are made from an export (pipeline.features.recipe)

    @field_serializer("features")
    def _specs(self, features: list[FeatureSpec]) -> list[dict[str, Any]]:
        return [spec.as_dict() for spec in features]  # a spec without display levels has no "levels" key

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class OutcomeChange(_Contract):
    """The closed deals a model learnt from, against those of the registered model before it."""

    previous_version: str | None  # the registry version compared with (the champion, else the newest); None: none
    outcomes: int                 # closed deals (won or lost) in the feature matrix
    won: int
    added: int | None             # closed now and not closed for the previous model (None: its list is unknown)
    added_won: int | None
    added_by_slice: dict[str, int] | None  # where the added deals went: train, valid, test (the newest)
    relabelled: int | None        # closed for both, with the other outcome now
    dropped: int | None           # closed for the previous model, absent or open now

    def sentence(self) -> str:
        """In plain words, for logs and the model card."""
        head = f"{self.outcomes:,} closed deals ({self.won:,} won)"
        if self.previous_version is None:
            return head + "; no earlier registered model to compare with"
        if self.added is None:
            return head + (f"; version {self.previous_version}'s own list is not in its MLflow run, so what "
                           "changed is unknown")
        where = ", ".join(f"{n:,} to {name}" for name, n in (self.added_by_slice or {}).items() if n)
        return (head + f": {self.added:,} added since version {self.previous_version} ({self.added_won:,} won"
                + (f"; {where}" if where else "") + f"), {self.relabelled:,} relabelled, {self.dropped:,} dropped")


class Provenance(_Contract):
    """``provenance.json``: where a model came from (tied to it by its sha256), and what its training
    outcomes added to the model before it (which depends on the registry's history, so it is no part
    of the model's bytes)."""

    model_sha256: str
    trained_at: str              # UTC, ISO 8601
    git_commit: str | None       # HEAD of the checkout the train stage ran in; None outside git
    git_dirty: bool | None       # tracked files differed from HEAD
    leadscore_version: str
    outcomes: OutcomeChange | None = None

    def commit_text(self) -> str | None:
        """The commit as a model card shows it: ``<sha>``, ``<sha>+dirty``, or None."""
        if self.git_commit is None:
            return None
        return self.git_commit + ("+dirty" if self.git_dirty else "")


# Keys of metadata written before the metadata was typed, and what became of them.
_LEGACY_KEYS = {"git_commit": "moved to provenance.json", "trained_at": "moved to provenance.json",
                "registry_version": "the registry's, never the model's"}


@dataclass(frozen=True)
class ServedModel:
    """The MLflow model a training run registers (built by :func:`pipeline.scoring.pyfunc.package`,
    logged by :func:`pipeline.mlops.tracking.log_training_run`)."""

    code: Path                  # the model-from-code file MLflow keeps and runs on load (no pickle)
    artifacts: dict[str, str]   # artifact name -> local folder
    signature: Any              # an mlflow.models.ModelSignature
    pip_requirements: list[str]


def parse_model_meta(raw: Any, *, where: str) -> ModelMeta:
    """Validate metadata read from ``where``; a problem raises :class:`ModelError` naming the key."""
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    if "meta_version" not in raw:  # written by leadscore before META_VERSION 1: same contract, a few keys more
        raw = {k: v for k, v in raw.items() if k not in _LEGACY_KEYS}
    try:
        return ModelMeta.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                             for e in err.errors()[:5])
        raise ModelError(f"{where} is not valid model metadata ({problems}); retrain, or restore the file "
                         "written with its model.txt") from None


def read_model_meta(path: Path) -> ModelMeta:
    try:
        raw = read_json(path)
    except FileNotFoundError:
        raise ModelError(f"missing {path}; run `leadscore train` first") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read as JSON: {exc}") from None
    return parse_model_meta(raw, where=str(path))


def write_model_meta(path: Path, meta: ModelMeta) -> None:
    write_json(path, meta.as_json())


def bundle_sha256(model_text: bytes, meta_text: bytes) -> str:
    """One sha256 over everything scoring reads: the LightGBM text and the metadata beside it, so a
    changed calibration or feature spec is caught as surely as a changed tree."""
    digest = hashlib.sha256()
    for part in (model_text, meta_text):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def read_provenance(path: Path, *, model_sha256: str) -> Provenance | None:
    """The provenance of the model with this sha256, or None if the file is missing, unreadable or
    belongs to another model (e.g. DVC restored the model files from its cache after another run)."""
    try:
        provenance = Provenance.model_validate(read_json(path))
    except (OSError, ValueError):  # ValidationError is a ValueError
        return None
    return provenance if provenance.model_sha256 == model_sha256 else None


def write_provenance(path: Path, provenance: Provenance) -> None:
    write_json(path, provenance.model_dump(mode="json"))
