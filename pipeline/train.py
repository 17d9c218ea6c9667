"""The train stage: time-based split, LightGBM with early stopping, model files, MLflow run.

Training is seeded and deterministic (``deterministic=true``, fixed threads, column-wise
histograms), so the same features and params give a byte-identical ``model.txt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.calibration import fit_calibration, score_points
from pipeline.config import GatesParams, Settings, TrainParams
from pipeline.drift import reference_profile
from pipeline.errors import ConfigError, DataError
from pipeline.explain import typical_won_values
from pipeline.features import FeatureSet, read_feature_set
from pipeline.io import atomic_path, sha256_file, write_json
from pipeline.model import category_levels, model_version, prepare_matrix
from pipeline.schema import MODEL_FILE, MODEL_META_FILE
from pipeline.split import SPLIT_STRATIFIED, split_rows
from pipeline.tracking import log_training_run

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TrainResult:
    booster: lgb.Booster
    meta: dict[str, Any]        # everything model_meta.json holds except the model file's hash
    split: pd.Series            # train / valid / test per labeled row of the feature matrix


def lgb_params(params: TrainParams, *, seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "auc",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "lambda_l2": params.lambda_l2,
        "num_threads": params.num_threads,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a frame's values, independent of how it was stored on disk."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()


def _split_summary(labeled: pd.DataFrame, split: pd.Series) -> dict[str, Any]:
    summary = {}
    for name in SPLITS:
        rows = labeled[split == name]
        summary[name] = {
            "rows": len(rows),
            "won": int(rows["label"].sum()),
            "as_of_from": str(rows["as_of"].min().date()) if len(rows) else None,
            "as_of_to": str(rows["as_of"].max().date()) if len(rows) else None,
        }
    return summary


def require_enough_outcomes(summary: dict[str, Any], gates: GatesParams) -> None:
    """The data-sufficiency gate: enough won and lost deals to learn from and to judge the model on."""
    needs = {"train": (gates.min_won_train, gates.min_lost_train), "valid": (1, 1),
             "test": (gates.min_won_test, gates.min_lost_test)}
    short = []
    for name, (min_won, min_lost) in needs.items():
        rows, won = summary[name]["rows"], summary[name]["won"]
        if won < min_won or rows - won < min_lost:
            short.append(f"the {name} slice has {won} won and {rows - won} lost deals (needs at least {min_won} won "
                         f"and {min_lost} lost)")
    if short:
        raise DataError("not enough closed deals to train and judge a model: " + "; ".join(short)
                        + ". Provide more history, or lower gates.min_* / change train.valid_fraction and "
                          "train.test_fraction in params.yaml")


def train(features: FeatureSet, *, params: TrainParams, seed: int, gates: GatesParams | None = None,
          drift_bins: int = 10) -> TrainResult:
    """Fit LightGBM on the oldest closed deals, early-stopping on the next slice, then calibrate its
    probabilities on that slice. The metadata keeps the training rows' distribution of every feature
    and of the score (``drift_bins`` bins each), for the drift report at scoring."""
    labeled = features.matrix[features.matrix["label"].notna()]
    split, method = split_rows(labeled, valid_fraction=params.valid_fraction, test_fraction=params.test_fraction,
                               seed=seed)
    if method == SPLIT_STRATIFIED:
        log.warning("the export has no decision dates: split at random (stratified, seed %d) instead of by time; "
                    "holdout figures may be optimistic if the data drifts over time", seed)
    summary = _split_summary(labeled, split)
    require_enough_outcomes(summary, gates or GatesParams())

    train_rows, valid_rows = labeled[split == "train"], labeled[split == "valid"]
    levels = category_levels(train_rows, features.specs)
    x_train = prepare_matrix(train_rows, specs=features.specs, levels=levels)
    x_valid = prepare_matrix(valid_rows, specs=features.specs, levels=levels)
    y_train = train_rows["label"].to_numpy()
    weight = None
    if params.class_weight == "balanced":  # won deals weigh lost/won: both outcomes count equally in the loss
        weight = np.where(y_train == 1, (y_train == 0).sum() / max((y_train == 1).sum(), 1), 1.0)
    # Tuning varies min_data_in_leaf on one Dataset, which LightGBM allows only without its pre-filter.
    binning = {"feature_pre_filter": False} if params.tuning_trials else None
    dtrain = lgb.Dataset(x_train, label=y_train, weight=weight, free_raw_data=False, params=binning)
    dvalid = lgb.Dataset(x_valid, label=valid_rows["label"].to_numpy(), reference=dtrain, params=binning)
    tuning = None
    if params.tuning_trials:
        params, tuning = tune(params, dtrain, dvalid, seed=seed)
    config = lgb_params(params, seed=seed)
    booster = _fit(config, dtrain, dvalid, params)
    best = booster.best_iteration or params.num_boost_round
    y_valid = valid_rows["label"].to_numpy(dtype=int)
    p_valid = np.asarray(booster.predict(x_valid, num_iteration=best), dtype=float)
    valid_auc = float(roc_auc_score(y_valid, p_valid))
    calibration = fit_calibration(y_valid, p_valid, method=params.calibration, seed=seed)
    log.info("trained %d trees (early stopping); validation ROC AUC %.4f on %d deals; calibration: %s",
             best, valid_auc, len(valid_rows), calibration.method)
    meta = {
        "features": [s.as_dict() for s in features.specs],
        "category_levels": levels,
        "best_iteration": best,
        "lightgbm_params": config,
        "lightgbm_version": lgb.__version__,
        "split": {"method": method, "valid_fraction": params.valid_fraction,
                  "test_fraction": params.test_fraction, **summary},
        "valid_auc": round(valid_auc, 6),
        "class_weight": params.class_weight,
        "tuning": tuning,
        "calibration": calibration.as_dict(),
        "typical_won": typical_won_values(x_train, y_train, features.specs),
        "drift_reference": reference_profile(
            x_train, features.specs, score_points(calibration.apply(
                np.asarray(booster.predict(x_train, num_iteration=best), dtype=float))), bins=drift_bins),
        "train_data_sha256": data_fingerprint(train_rows),
        "git_commit": git_commit(),
    }
    return TrainResult(booster=booster, meta=meta, split=split)


def params_fingerprint(settings: Settings) -> str:
    """sha256 of every param that shapes the model (all sections but paths), independent of key order."""
    relevant = settings.model_dump(mode="json", exclude={"paths"})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _fit(config: dict[str, Any], dtrain: lgb.Dataset, dvalid: lgb.Dataset, params: TrainParams) -> lgb.Booster:
    return lgb.train(config, dtrain, num_boost_round=params.num_boost_round, valid_sets=[dvalid],
                     valid_names=["valid"], callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])


TUNED = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2")


def tune(params: TrainParams, dtrain: lgb.Dataset, dvalid: lgb.Dataset, *,
         seed: int) -> tuple[TrainParams, dict[str, Any]]:
    """``train.tuning_trials`` Optuna trials (seeded TPE, one at a time, so reruns agree) that search
    the tree params for the best validation ROC AUC. The holdout is never seen; the params given in
    params.yaml are trial 0, so tuning can only keep them or find better on validation."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError("train.tuning_trials > 0 needs Optuna: pip install 'leadscore[tune]' (or set "
                          "train.tuning_trials: 0)") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        candidate = params.model_copy(update={
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 2, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        })
        booster = _fit(lgb_params(candidate, seed=seed), dtrain, dvalid, candidate)
        return float(booster.best_score["valid"]["auc"])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({name: getattr(params, name) for name in TUNED})
    study.optimize(objective, n_trials=params.tuning_trials, n_jobs=1)
    best = params.model_copy(update=study.best_params)
    given = float(study.trials[0].value or 0.0)
    log.info("Optuna: %d trials; best validation ROC AUC %.4f with %s (the params given: %.4f)",
             len(study.trials), study.best_value, study.best_params, given)
    report = {"trials": len(study.trials), "best_valid_auc": round(study.best_value, 6),
              "given_params_valid_auc": round(given, 6), "best_params": study.best_params}
    return best, report


def git_commit() -> str | None:
    """HEAD of the repository the stage runs in, with "+dirty" if tracked files changed."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def save_model(result: TrainResult, models_dir: Path) -> dict[str, Any]:
    """Write model.txt and model_meta.json (with the model's sha256 and version); return the metadata."""
    model_path = models_dir / MODEL_FILE
    with atomic_path(model_path) as tmp:
        result.booster.save_model(str(tmp), num_iteration=result.meta["best_iteration"])
    digest = sha256_file(model_path)
    meta = {**result.meta, "model_sha256": digest, "model_version": model_version(digest)}
    write_json(models_dir / MODEL_META_FILE, meta)
    return meta


def run(settings: Settings) -> dict[str, Any]:
    """The train stage: ``paths.features`` -> ``paths.models`` and an MLflow run."""
    features = read_feature_set(settings.paths.features)
    result = train(features, params=settings.train, seed=settings.seed, gates=settings.gates,
                   drift_bins=settings.score.drift.bins)
    result.meta["params_sha256"] = params_fingerprint(settings)
    meta = save_model(result, settings.paths.models)
    log.info("model %s written to %s", meta["model_version"], settings.paths.models)
    log_training_run(settings, meta=meta, booster=result.booster)
    return meta

