"""MLflow tracking: one run per trained model, found again later by the model's sha256.

The tracking URI is ``MLFLOW_TRACKING_URI`` if set, else the local SQLite file ``paths.mlflow_db``.
Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb

from pipeline.config import Settings, mlflow_tracking_uri

log = logging.getLogger(__name__)

MODEL_TAG = "model_sha256"


def _mlflow(settings: Settings) -> Any:
    """mlflow, pointed at the configured tracking store and experiment."""
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(mlflow_tracking_uri(settings))
    # MLflow also exports the URI as MLFLOW_TRACKING_URI (for subprocesses). We read that variable as
    # the user's choice, so put it back: otherwise a second project in the same process (tests, a
    # notebook) would silently log to the first one's store.
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    name = settings.train.experiment_name
    if not before and mlflow.get_experiment_by_name(name) is None:
        # Artifacts next to mlflow.db (paths.mlflow_db), not in ./mlruns of whatever folder we run from.
        location = (Path(settings.paths.mlflow_db).resolve().parent / "mlruns").as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return mlflow


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def log_training_run(settings: Settings, *, meta: dict[str, Any], booster: lgb.Booster) -> str:
    """Log params, validation metrics, model files and the LightGBM model; return the run id."""
    mlflow = _mlflow(settings)
    models_dir = settings.paths.models
    with mlflow.start_run(run_name=f"train {meta['model_version']}") as run:
        mlflow.log_params({
            **_flat("train", settings.train.model_dump()),
            **_flat("features", settings.features.model_dump()),
            "seed": settings.seed,
            "source.kind": settings.source.kind,
        })
        split = meta["split"]
        mlflow.log_metrics({
            "valid_auc": meta["valid_auc"],
            "best_iteration": meta["best_iteration"],
            **{f"{name}_rows": split[name]["rows"] for name in ("train", "valid", "test")},
            **{f"{name}_won": split[name]["won"] for name in ("train", "valid", "test")},
        })
        mlflow.set_tags({
            MODEL_TAG: meta["model_sha256"],
            "model_version": meta["model_version"],
            "train_data_sha256": meta["train_data_sha256"],
            "params_sha256": meta.get("params_sha256", ""),
            "git_commit": meta.get("git_commit") or "unknown",
            "calibration": meta.get("calibration", {}).get("method", "none"),
        })
        for path in sorted(Path(models_dir).iterdir()):
            mlflow.log_artifact(str(path), artifact_path="leadscore")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.lightgbm.log_model(booster, name="model",
                                      registered_model_name=settings.train.registered_model_name)
        run_id: str = run.info.run_id
    log.info("MLflow run %s logged to %s", run_id, mlflow_tracking_uri(settings))
    return run_id


def log_evaluation(settings: Settings, *, model_sha256: str, metrics: dict[str, float],
                   artifacts: list[Path], tags: dict[str, str] | None = None) -> str:
    """Add holdout metrics and plot files to the run that trained this model (a new run if none)."""
    mlflow = _mlflow(settings)
    found = mlflow.search_runs(
        experiment_names=[settings.train.experiment_name],
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
