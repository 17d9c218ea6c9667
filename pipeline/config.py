"""params.yaml -> typed, validated settings, read once.

Every key is declared here. An unknown key, a value of the wrong type or a value out of range
raises :class:`ConfigError` naming the key, e.g. ``train.learning_rat: unknown key``.
"""

from __future__ import annotations

import difflib
import itertools
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(_Section):
    raw: Path = Path("data/raw")
    ground_truth: Path = Path("data/ground_truth")
    interim: Path = Path("data/interim")
    features: Path = Path("data/features")
    models: Path = Path("models")
    metrics: Path = Path("reports/metrics.json")
    plots: Path = Path("reports/plots")
    scores: Path = Path("data/scores")
    ingest_report: Path = Path("reports/ingest.json")
    mlflow_db: Path = Path("mlflow.db")


class SourceParams(_Section):
    kind: Literal["synthetic"] = "synthetic"


class GenerateParams(_Section):
    n_leads: int = Field(20_000, ge=50)
    n_accounts: int = Field(5_000, ge=10)
    events_per_lead: float = Field(8.0, ge=0)
    start_date: date = date(2023, 1, 1)
    export_date: date = date(2025, 12, 31)
    dirty_fraction: float = Field(0.01, ge=0, le=0.5)
    format: Literal["csv", "parquet"] = "csv"
    signal_scale: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _dates_in_order(self) -> GenerateParams:
        if (self.export_date - self.start_date).days < 180:
            raise ValueError("export_date must be at least 180 days after start_date")
        return self


class FeaturesParams(_Section):
    event_windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90], min_length=1)
    scoring_date: date | None = None

    @model_validator(mode="after")
    def _windows_positive(self) -> FeaturesParams:
        if any(w <= 0 for w in self.event_windows_days):
            raise ValueError("event_windows_days must all be positive")
        return self


class TrainParams(_Section):
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(40, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    num_boost_round: int = Field(1000, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    num_threads: int = Field(2, ge=1)
    experiment_name: str = "leadscore"
    registered_model_name: str = "leadscore"


class EvaluateParams(_Section):
    top_fraction: float = Field(0.1, gt=0, lt=1)
    bootstrap_rounds: int = Field(500, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)


class ScoreParams(_Section):
    top_reasons: int = Field(3, ge=1, le=20)
    grade_bands: list[float] = Field(default_factory=lambda: [75.0, 50.0, 25.0])

    @model_validator(mode="after")
    def _bands_descending(self) -> ScoreParams:
        bands = self.grade_bands
        if len(bands) != 3 or any(a <= b for a, b in itertools.pairwise(bands)):
            raise ValueError("grade_bands must be three descending scores (A, B, C cut-offs)")
        return self


class Settings(_Section):
    seed: int = 42
    paths: PathsParams = Field(default_factory=PathsParams)
    source: SourceParams = Field(default_factory=SourceParams)
    generate: GenerateParams = Field(default_factory=GenerateParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    score: ScoreParams = Field(default_factory=ScoreParams)

    def resolve(self, root: Path) -> Settings:
        """The same settings with every relative path made absolute under ``root``."""
        resolved = {
            name: (root / value) if not Path(value).is_absolute() else Path(value)
            for name, value in self.paths.model_dump().items()
        }
        return self.model_copy(update={"paths": PathsParams(**resolved)})


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed at ``loc`` (the parent of a rejected key), for a did-you-mean hint."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, int))
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(loc[-1]), _known_keys(Settings, loc[:-1]), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(f"{key}: unknown key{extra}")
        else:
            value = e.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict) else ""
            lines.append(f"{key}: {e['msg']}{shown}")
    return f"invalid params in {source}:\n  " + "\n  ".join(lines)


def parse_settings(raw: Any, *, source: str = "params") -> Settings:
    """Validate an already-parsed params mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def load_settings(path: Path | str = DEFAULT_PARAMS) -> Settings:
    """Read and validate a params file. Relative paths in it resolve against the current directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"params file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_settings(raw, source=str(path)).resolve(Path.cwd())


def mlflow_tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI if set, else the local SQLite file from ``paths.mlflow_db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{settings.paths.mlflow_db}"
