"""Shared, seeded fixtures. The expensive ones (a default-size export and a model trained on it)
are built once per session and only by the tests that ask for them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Settings, load_settings, parse_settings
from pipeline.contracts.features import FeatureSet
from pipeline.data.generate import SyntheticExport, generate, write_export
from pipeline.data.ingest import IngestResult, ingest
from pipeline.modeling.train import TrainResult, save_model, train
from pipeline.scoring.scorer import Scorer
from pipeline.stages.features import featurise

REPO = Path(__file__).resolve().parents[1]
PARAMS_SHA256 = "0" * 64  # the params fingerprint of models the tests save (the train stage computes a real one)


MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _mlflow_uris_restored() -> Iterator[None]:
    """No test leaves MLflow pointed at its store: mlflow's process-wide tracking and registry URIs
    (and the environment variables it exports for them) are put back after each test, so a client or
    a stage in a later test on the same worker never reads or registers in another test's store."""
    before = {name: os.environ.get(name) for name in MLFLOW_URI_VARS}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def registry_client(uri: str) -> Any:
    """An MlflowClient reading runs and registered models from the one store ``uri`` (a sqlite:///
    URI or a server): without ``registry_uri`` it would read models from whatever registry the
    process was last pointed at."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


def make_settings(root: Path, **sections: Any) -> Settings:
    """Settings with every path under ``root`` (the synthetic export in ``root/data/raw``);
    ``sections`` override params sections, e.g. ``generate={"n_leads": 2000}``."""
    return parse_settings(sections, source="test").resolve(root)


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    export: SyntheticExport
    ingested: IngestResult
    features: FeatureSet


def prepare(root: Path, settings: Settings) -> Prepared:
    export = generate(params=settings.generate, seed=settings.seed)
    write_export(export, raw_dir=settings.paths.raw, truth_dir=settings.paths.ground_truth)
    ingested = ingest(settings.source)
    features = featurise(ingested.records, ingested.events, ingested.fields, settings=settings,
                         event_accounts=ingested.event_accounts, clock=ingested.clock)
    return Prepared(settings=settings, export=export, ingested=ingested, features=features)


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """3,000 synthetic leads, written, ingested and featurised once."""
    root = tmp_path_factory.mktemp("small")
    return prepare(root, make_settings(root, generate={"n_leads": 3000, "n_accounts": 800}))


def train_on(prepared: Prepared, *, features: FeatureSet | None = None, seed: int | None = None,
             **train_params: Any) -> TrainResult:
    """The train stage's core on ``prepared``'s features (or ``features``) with its settings;
    ``train_params`` override keys of ``train:``."""
    settings = prepared.settings
    params = settings.train.model_copy(update=train_params) if train_params else settings.train
    return train(features if features is not None else prepared.features, params=params, split=settings.split,
                 sufficiency=settings.sufficiency, seed=settings.seed if seed is None else seed,
                 drift_bins=settings.drift.bins)


@pytest.fixture(scope="session")
def small_model(small: Prepared) -> TrainResult:
    return train_on(small)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Prepared, TrainResult]:
    """The repository's own params.yaml (default size), trained once."""
    root = tmp_path_factory.mktemp("default")
    repo_settings = load_settings(REPO / "params.yaml")
    local = make_settings(root)
    settings = repo_settings.model_copy(update={"paths": local.paths, "source": local.source})
    prepared = prepare(root, settings)
    return prepared, train_on(prepared)


@dataclass(frozen=True)
class DefaultScores:
    """The default run's open leads scored twice, a week apart, with the score history between them:
    ``first`` as the score stage writes them, ``second`` with each lead's change since (every lead
    a week older, every third one with a new demo request). Both with the JSON detail columns."""

    first: pd.DataFrame
    second: pd.DataFrame
    model: Any
    settings: Settings


@pytest.fixture(scope="session")
def default_scores(default_run: tuple[Prepared, TrainResult], tmp_path_factory: pytest.TempPathFactory
                   ) -> DefaultScores:
    import pyarrow as pa

    from pipeline.modeling.model import load_model
    from pipeline.scoring.history import History, Previous
    from pipeline.scoring.scorer import Tracking

    prepared, result = default_run
    root = tmp_path_factory.mktemp("default_scores")
    save_model(result, root / "model", params_sha256=PARAMS_SHA256)
    model = load_model(root / "model")
    scorer = scorer_for(model, prepared.settings)
    matrix = prepared.features.matrix
    rows = matrix[matrix["outcome"] == "open"].reset_index(drop=True)
    history = History(root / "history", "leadscore-synthetic")

    def run(frame: pd.DataFrame, scored_at: str) -> pd.DataFrame:
        track = Tracking(previous=Previous.of(history, scored_at=scored_at, runs=4),
                         old=lambda version, registry_version: (None, "one model in this fixture"),
                         params=prepared.settings.history, model_name="leadscore-synthetic", job="stage")
        out = scorer.score(frame, scored_at=scored_at, detail=True, track=track)
        history.append(pa.concat_tables(track.tables), scored_at=scored_at)
        return out

    first = run(rows, "2026-01-05T00:00:00Z")
    later = rows.copy()
    since = [c for c in later.columns if c.endswith("days_since") or c == "days_since_last_event"]
    later[since] = later[since].where(later[since] >= 9999, later[since] + 7)
    demo = later.index[::3]
    counts = [c for c in later.columns if c.startswith("evt_demo_request_") and c.endswith("d")]
    later.loc[demo, counts] = later.loc[demo, counts] + 1
    later.loc[demo, "evt_demo_request_days_since"] = 0.0
    second = run(later, "2026-01-12T00:00:00Z")
    return DefaultScores(first=first, second=second, model=model, settings=prepared.settings)


@pytest.fixture(scope="session")
def models_dir(small_model: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_model`` saved as the train stage saves it (model.txt + model_meta.json)."""
    folder = tmp_path_factory.mktemp("models")
    save_model(small_model, folder, params_sha256=PARAMS_SHA256)
    return folder


@pytest.fixture(scope="session")
def open_rows(small: Prepared) -> pd.DataFrame:
    """The open deals of the small export's feature matrix: what scoring takes."""
    matrix = small.features.matrix
    return matrix[matrix["outcome"] == "open"].reset_index(drop=True)


def score_with(prepared: Prepared, models_dir: Path, source: Path, output: Path, **kwargs: Any) -> Any:
    """`leadscore score --input source --output output --model models_dir` with the small export's settings."""
    from pipeline.stages.score import run_batch

    return run_batch(prepared.settings, input_path=source, output_path=output, model_name=str(models_dir), **kwargs)


def scorer_for(model: Any, settings: Settings, *, status: str = "champion", **score: Any) -> Scorer:
    """A :class:`Scorer` of ``model`` with ``settings``' score params (``score`` overrides some)."""
    params = settings.score.model_copy(update=score) if score else settings.score
    return Scorer(model, params, settings.grades.bands, status)


def truth_for(prepared: Prepared, rows: pd.DataFrame) -> pd.Series:
    """True conversion probability for each feature-matrix row (record_id is the deal id)."""
    truth = prepared.export.truth.set_index("deal_id")["p_true"]
    return truth.reindex(rows["record_id"].to_numpy()).set_axis(rows.index)


def holder(store: Any, alias: str = "champion") -> Any:
    """The registry version holding ``alias`` (the test fails if none does)."""
    from pipeline.mlops import registry

    version = registry.aliased(store, alias)
    assert version is not None, f"no version of {store.model_name} holds {alias}"
    return version
