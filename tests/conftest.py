"""Shared, seeded fixtures. The expensive ones (a default-size export and a model trained on it)
are built once per session and only by the tests that ask for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Settings, load_settings, parse_settings
from pipeline.features import FeatureSet, featurise
from pipeline.generate import SyntheticExport, generate, write_export
from pipeline.ingest import IngestResult, ingest
from pipeline.train import TrainResult, train

REPO = Path(__file__).resolve().parents[1]


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
    ingested = ingest(settings.source.mapping())
    features = featurise(ingested.records, ingested.events, ingested.fields, settings=settings,
                         event_accounts=ingested.event_accounts)
    return Prepared(settings=settings, export=export, ingested=ingested, features=features)


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """3,000 synthetic leads, written, ingested and featurised once."""
    root = tmp_path_factory.mktemp("small")
    return prepare(root, make_settings(root, generate={"n_leads": 3000, "n_accounts": 800}))


@pytest.fixture(scope="session")
def small_model(small: Prepared) -> TrainResult:
    return train(small.features, params=small.settings.train, seed=small.settings.seed)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Prepared, TrainResult]:
    """The repository's own params.yaml (default size), trained once."""
    root = tmp_path_factory.mktemp("default")
    repo_settings = load_settings(REPO / "params.yaml")
    local = make_settings(root)
    settings = repo_settings.model_copy(update={"paths": local.paths, "source": local.source})
    prepared = prepare(root, settings)
    return prepared, train(prepared.features, params=settings.train, seed=settings.seed)


@pytest.fixture(scope="session")
def models_dir(small_model: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_model`` saved as the train stage saves it (model.txt + model_meta.json)."""
    from pipeline.train import save_model

    folder = tmp_path_factory.mktemp("models")
    save_model(small_model, folder)
    return folder


@pytest.fixture(scope="session")
def open_rows(small: Prepared) -> pd.DataFrame:
    """The open deals of the small export's feature matrix: what scoring takes."""
    matrix = small.features.matrix
    return matrix[matrix["outcome"] == "open"].reset_index(drop=True)


def score_with(prepared: Prepared, models_dir: Path, source: Path, output: Path, **kwargs: Any) -> Any:
    """`leadscore score --input source --output output --model models_dir` with the small export's settings."""
    from pipeline.score import score_file

    return score_file(prepared.settings, input_path=source, output_path=output, model_name=str(models_dir), **kwargs)


def truth_for(prepared: Prepared, rows: pd.DataFrame) -> pd.Series:
    """True conversion probability for each feature-matrix row (record_id is the deal id)."""
    truth = prepared.export.truth.set_index("deal_id")["p_true"]
    return truth.reindex(rows["record_id"].to_numpy()).set_axis(rows.index)
