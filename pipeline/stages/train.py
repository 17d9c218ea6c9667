"""The train stage: ``paths.features`` -> ``paths.models`` (model.txt, model_meta.json and, outside
DVC, provenance.json), an MLflow run and a registered model version."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from pipeline.config import Settings
from pipeline.contracts.features import read_feature_set
from pipeline.contracts.files import PROVENANCE_FILE
from pipeline.contracts.model import ModelMeta, write_provenance
from pipeline.mlops.provenance import record
from pipeline.mlops.tracking import Store, log_training_run
from pipeline.modeling.train import save_model, train

log = logging.getLogger(__name__)


def fingerprint(params: dict[str, Any]) -> str:
    """sha256 of params, independent of key order."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def run(settings: Settings) -> ModelMeta:
    features = read_feature_set(settings.paths.features)
    result = train(features, params=settings.train, split=settings.split, sufficiency=settings.sufficiency,
                   seed=settings.seed, drift_bins=settings.drift.bins)
    # The params this stage reads: the model's fingerprint and what its MLflow run shows. Those of the
    # stages before it shaped the training rows, whose own sha256 the metadata holds.
    params = {"seed": settings.seed, "split": settings.split.model_dump(mode="json"),
              "train": settings.train.model_dump(mode="json"),
              "sufficiency": settings.sufficiency.model_dump(mode="json"), "drift": {"bins": settings.drift.bins}}
    meta = save_model(result, settings.paths.models, params_sha256=fingerprint(params))
    provenance = record(meta.model_sha256)
    write_provenance(settings.paths.models / PROVENANCE_FILE, provenance)
    log.info("model %s written to %s", meta.model_version, settings.paths.models)
    log_training_run(Store.of(settings.registry, mlflow_db=settings.paths.mlflow_db), meta=meta,
                     provenance=provenance, booster=result.booster, models_dir=settings.paths.models, params=params)
    return meta
