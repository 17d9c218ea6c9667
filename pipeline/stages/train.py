"""The train stage: ``paths.features`` -> ``paths.models`` (model.txt, model_meta.json and, outside
DVC, provenance.json), an MLflow run and a registered model version."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import ScoreParams, Settings
from pipeline.contracts.features import read_feature_set
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE, PROVENANCE_FILE
from pipeline.contracts.model import ModelMeta, OutcomeChange, bundle_sha256, write_provenance
from pipeline.mlops import registry
from pipeline.mlops.provenance import closed_outcomes, outcome_change, record
from pipeline.mlops.tracking import Store, log_training_run, read_outcomes
from pipeline.modeling.metrics import slices
from pipeline.modeling.train import save_model, train
from pipeline.scoring.pyfunc import package

log = logging.getLogger(__name__)


def fingerprint(params: dict[str, Any]) -> str:
    """sha256 of params, independent of key order."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def new_outcomes(store: Store, outcomes: pd.DataFrame) -> OutcomeChange:
    """``outcomes`` against those of the champion (else the newest registered version)."""
    previous = registry.aliased(store) or next(reversed(registry.versions(store)), None)
    if previous is None:
        return outcome_change(outcomes, None, previous_version=None)
    return outcome_change(outcomes, read_outcomes(store, previous.run_id), previous_version=previous.version)


def run(settings: Settings) -> ModelMeta:
    features = read_feature_set(settings.paths.features)
    result = train(features, params=settings.train, split=settings.split, sufficiency=settings.sufficiency,
                   seed=settings.seed, drift_bins=settings.drift.bins)
    # What the rest needs of the matrix, taken now: the matrix is let go before the registry work.
    outcomes = closed_outcomes(slices(features, split=settings.split, seed=settings.seed,
                                      columns=["record_id", "label"]))
    example = features.matrix.head(5).copy()
    del features
    # The params this stage reads: the model's fingerprint and what its MLflow run shows. Those of the
    # stages before it shaped the training rows, whose own sha256 the metadata holds.
    params = {"seed": settings.seed, "split": settings.split.model_dump(mode="json"),
              "train": settings.train.model_dump(mode="json"),
              "sufficiency": settings.sufficiency.model_dump(mode="json"), "drift": {"bins": settings.drift.bins}}
    meta = save_model(result, settings.paths.models, params_sha256=fingerprint(params))
    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    change = new_outcomes(store, outcomes)
    log.info("trained on %s", change.sentence())
    provenance = record(meta.model_sha256, outcomes=change)
    write_provenance(settings.paths.models / PROVENANCE_FILE, provenance)
    log.info("model %s written to %s", meta.model_version, settings.paths.models)
    models = settings.paths.models
    bundle = bundle_sha256((models / MODEL_FILE).read_bytes(), (models / MODEL_META_FILE).read_bytes())
    # The registered MLflow model scores as `leadscore score` does, with these score and grade params.
    served_params = ScoreParams(top_reasons=settings.score.top_reasons,
                                min_contribution=settings.score.min_contribution,
                                templates=settings.score.templates, routing=settings.score.routing,
                                shap=settings.score.shap)
    with tempfile.TemporaryDirectory(prefix="leadscore-pyfunc-") as tmp:
        served = package(models, score=served_params, grades=settings.grades, example=example,
                         workdir=Path(tmp))
        log_training_run(store, meta=meta, provenance=provenance, served=served, models_dir=models, params=params,
                         bundle=bundle, outcomes=outcomes)
    return meta
