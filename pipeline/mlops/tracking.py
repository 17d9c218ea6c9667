"""MLflow tracking: one run per trained model, found again later by the model's sha256.

The store is ``MLFLOW_TRACKING_URI`` if set, else the local SQLite file ``paths.mlflow_db`` with its
artifacts in ``mlruns/`` beside it. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from pipeline.config import RegistryParams
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE, PROVENANCE_FILE
from pipeline.contracts.model import ModelMeta, Provenance
from pipeline.runtime import quiet_loggers

log = logging.getLogger(__name__)

MODEL_TAG = "model_sha256"
ARTIFACT_DIR = "leadscore"  # where a training run keeps model.txt, model_meta.json and provenance.json
MLFLOW_LOGGERS = ("alembic", "mlflow")


@dataclass(frozen=True)
class Store:
    """Where runs and registered models live, and the names used there."""

    uri: str
    experiment_name: str
    model_name: str
    artifact_root: Path | None  # for the local SQLite store: mlruns/ beside it; None for a server

    @classmethod
    def of(cls, registry: RegistryParams, *, mlflow_db: Path) -> Store:
        """``MLFLOW_TRACKING_URI`` if set, else the SQLite file ``mlflow_db``."""
        server = os.environ.get("MLFLOW_TRACKING_URI")
        return cls(uri=server or f"sqlite:///{mlflow_db}", experiment_name=registry.experiment_name,
                   model_name=registry.model_name,
                   artifact_root=None if server else Path(mlflow_db).resolve().parent / "mlruns")

    def client(self) -> Any:
        """An MlflowClient on this store's tracking server and registry."""
        quiet_loggers(*MLFLOW_LOGGERS)
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def _mlflow(store: Store) -> Any:
    """mlflow, pointed at the store and its experiment."""
    quiet_loggers(*MLFLOW_LOGGERS)
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(store.uri)
    # MLflow also exports the URI as MLFLOW_TRACKING_URI (for subprocesses). We read that variable as
    # the user's choice, so put it back: otherwise a second project in the same process (tests, a
    # notebook) would silently log to the first one's store.
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    if store.artifact_root is not None and mlflow.get_experiment_by_name(store.experiment_name) is None:
        # Artifacts next to mlflow.db (paths.mlflow_db), not in ./mlruns of whatever folder we run from.
        mlflow.create_experiment(store.experiment_name, artifact_location=store.artifact_root.as_uri())
    mlflow.set_experiment(store.experiment_name)
    return mlflow


def flat(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params as dotted keys: {"train": {"num_leaves": 4}} -> {"train.num_leaves": 4}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def log_training_run(store: Store, *, meta: ModelMeta, provenance: Provenance, booster: lgb.Booster,
                     models_dir: Path, params: dict[str, Any]) -> str:
    """Log ``params``, validation figures, the model files and the LightGBM model, and register the
    model under the store's name; return the run id."""
    mlflow = _mlflow(store)
    with mlflow.start_run(run_name=f"train {meta.model_version}") as run:
        mlflow.log_params(flat("", params))
        split = meta.split
        slices = {"train": split.train, "valid": split.valid, "test": split.test}
        mlflow.log_metrics({
            "valid_auc": meta.valid_auc,
            "best_iteration": meta.best_iteration,
            **{f"{name}_rows": part.rows for name, part in slices.items()},
            **{f"{name}_won": part.won for name, part in slices.items()},
        })
        mlflow.set_tags({
            MODEL_TAG: meta.model_sha256,
            "model_version": meta.model_version,
            "train_data_sha256": meta.train_data_sha256,
            "params_sha256": meta.params_sha256,
            "git_commit": provenance.commit_text() or "unknown",
            "calibration": meta.calibration.method,
        })
        for name in (MODEL_FILE, MODEL_META_FILE, PROVENANCE_FILE):
            mlflow.log_artifact(str(models_dir / name), artifact_path=ARTIFACT_DIR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.lightgbm.log_model(booster, name="model", registered_model_name=store.model_name)
        run_id: str = run.info.run_id
    log.info("MLflow run %s logged to %s", run_id, store.uri)
    return run_id


def log_evaluation(store: Store, *, model_sha256: str, metrics: dict[str, float], artifacts: list[Path],
                   tags: dict[str, str] | None = None) -> str:
    """Add holdout metrics and plot files to the run that trained this model (a new run if none)."""
    mlflow = _mlflow(store)
    found = mlflow.search_runs(
        experiment_names=[store.experiment_name],
        filter_string=f"tags.{MODEL_TAG} = '{model_sha256}'",
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )
    run_id = found[0].info.run_id if found else None
    if run_id is None:
        log.warning("no MLflow run found for model %s; logging the evaluation to a new run", model_sha256[:12])
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else "evaluate") as run:
        if run_id is None:
            mlflow.set_tag(MODEL_TAG, model_sha256)
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        if tags:
            mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        result: str = run.info.run_id
    return result
