"""Training: the time-based split, LightGBM with early stopping, calibration, and the model files.

Training is seeded and deterministic (``deterministic=true``, fixed threads, column-wise
histograms), so the same features and params give a byte-identical ``model.txt`` and
``model_meta.json``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.config import SplitParams, SufficiencyParams, TrainParams
from pipeline.contracts.features import NO_ACTIVITY_DAYS, FeatureSet, FeatureSpec
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.contracts.model import ModelMeta, write_model_meta
from pipeline.io.files import atomic_path, sha256_file
from pipeline.modeling.calibration import fit_calibration
from pipeline.modeling.drift import reference_profile
from pipeline.modeling.gates import require_enough_outcomes
from pipeline.modeling.grades import score_points
from pipeline.modeling.model import category_levels, model_version, prepare_matrix
from pipeline.modeling.split import SPLIT_STRATIFIED, SPLITS, MatrixSplit, model_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    booster: lgb.Booster
    best_iteration: int
    description: dict[str, Any]  # every ModelMeta field but those that identify the saved files
    split: pd.Series             # train / valid / test per labeled row of the feature matrix


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


def data_fingerprint(frame: pd.DataFrame, rows: np.ndarray | None = None) -> str:
    """sha256 of a frame's values (of the rows at positions ``rows``, when given), independent of how
    it was stored on disk: that of ``pd.util.hash_pandas_object(frame.iloc[rows], index=False)``,
    built a column at a time so the rows are never copied as a whole frame."""
    # Each row's hash combines its columns' hashes as pandas does (CPython's tuple hash).
    out = np.full(len(frame) if rows is None else len(rows), 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i in range(len(frame.columns)):
        column = frame.iloc[:, i]
        column = column if rows is None else column.iloc[rows]
        out ^= pd.util.hash_pandas_object(column, index=False).to_numpy()
        out *= mult
        mult += np.uint64(82520 + 2 * (len(frame.columns) - i))
    out += np.uint64(97531)
    return hashlib.sha256(out.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()


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


def typical_won_values(x: pd.DataFrame, y: np.ndarray, specs: list[FeatureSpec]) -> dict[str, Any]:
    """Per feature, a value typical of won deals (from the training rows): the most common category;
    for a number, the median over won deals that show it (not 0, not "never"), else over all won.
    Scoring proposes these in "what would raise it"."""
    won = x[y == 1]
    out: dict[str, Any] = {}
    for spec in specs:
        column = won[spec.name]
        if spec.kind == "categorical":
            counts = column.dropna().astype(str).value_counts()
            out[spec.name] = str(counts.index[0]) if len(counts) else None
            continue
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        shown = values[(values != 0) & (values < NO_ACTIVITY_DAYS)]
        pool = shown if len(shown) else values
        out[spec.name] = float(np.median(pool)) if len(pool) else None
    return out


PREDICT_ROWS = 1 << 18  # rows LightGBM predicts at a time: it copies its input into one float matrix


def predict_rows(booster: lgb.Booster, x: pd.DataFrame, *, num_iteration: int) -> np.ndarray:
    """``booster.predict(x)``, a slice of rows at a time (each row's prediction is its own, so the
    same values): the float copy LightGBM makes of its input stays bounded (1.8 GB at 5M leads)."""
    parts = [np.asarray(booster.predict(x.iloc[at:at + PREDICT_ROWS], num_iteration=num_iteration), dtype=float)
             for at in range(0, len(x), PREDICT_ROWS)]
    return np.concatenate(parts) if parts else np.empty(0)


def train(features: FeatureSet, *, params: TrainParams, split: SplitParams, sufficiency: SufficiencyParams,
          seed: int, drift_bins: int, rows: np.ndarray | None = None, describe: bool = True) -> TrainResult:
    """Fit LightGBM on the oldest closed deals, early-stopping on the next slice, then calibrate its
    probabilities on that slice. The metadata keeps the training rows' distribution of every feature
    and of the score (``drift_bins`` bins each), for the drift report at scoring. ``rows``: train on
    the matrix's rows at these positions only, as if they were the whole matrix in that order.
    ``describe=False`` (the backtest's models, never saved): no typical values, drift reference or
    training fingerprint, which would cost a prediction over every training row."""
    parts = MatrixSplit(features.matrix, valid_fraction=split.valid_fraction, test_fraction=split.test_fraction,
                        seed=seed, rows=rows)
    method, slices = parts.method, parts.slice_of
    if method == SPLIT_STRATIFIED:
        log.warning("the export has no decision dates: split at random (stratified, seed %d) instead of by time; "
                    "holdout figures may be optimistic if the data drifts over time", seed)
    summary = _split_summary(parts.keys, slices)
    require_enough_outcomes(summary, sufficiency)

    # Only the model's inputs of each slice are taken from the matrix (which stays the caller's).
    inputs = model_columns(features.matrix, [s.name for s in features.specs], "label")
    train_rows = parts.rows("train", inputs)
    levels = category_levels(train_rows, features.specs)
    x_train = prepare_matrix(train_rows, specs=features.specs, levels=levels)
    y_train = train_rows["label"].to_numpy()
    del train_rows
    train_sha256 = data_fingerprint(features.matrix, parts.positions_of("train")) if describe else None
    valid_rows = parts.rows("valid", inputs)
    x_valid = prepare_matrix(valid_rows, specs=features.specs, levels=levels)
    y_valid = valid_rows["label"].to_numpy(dtype=int)
    del valid_rows, parts
    weight = None
    if params.class_weight == "balanced":  # won deals weigh lost/won: both outcomes count equally in the loss
        weight = np.where(y_train == 1, (y_train == 0).sum() / max((y_train == 1).sum(), 1), 1.0)
    # Tuning varies min_data_in_leaf on one Dataset, which LightGBM allows only without its pre-filter.
    binning = {"feature_pre_filter": False} if params.tuning_trials else None
    dtrain = lgb.Dataset(x_train, label=y_train, weight=weight, free_raw_data=False, params=binning)
    dvalid = lgb.Dataset(x_valid, label=y_valid.astype(float), reference=dtrain, params=binning)

    def fit(candidate: TrainParams, dtrain: lgb.Dataset, dvalid: lgb.Dataset) -> lgb.Booster:
        return lgb.train(lgb_params(candidate, seed=seed), dtrain, num_boost_round=candidate.num_boost_round,
                         valid_sets=[dvalid], valid_names=["valid"],
                         callbacks=[lgb.early_stopping(candidate.early_stopping_rounds, verbose=False)])

    tuning = None
    if params.tuning_trials:
        from pipeline.modeling.tune import tune  # Optuna is optional: imported only when asked for

        params, tuning = tune(params, dtrain, dvalid, fit=fit, seed=seed)
    booster = fit(params, dtrain, dvalid)
    best = booster.best_iteration or params.num_boost_round
    p_valid = predict_rows(booster, x_valid, num_iteration=best)
    valid_auc = float(roc_auc_score(y_valid, p_valid))
    calibration = fit_calibration(y_valid, p_valid, method=params.calibration, seed=seed)
    log.info("trained %d trees (early stopping); validation ROC AUC %.4f on %d deals; calibration: %s",
             best, valid_auc, len(y_valid), calibration.method)
    description = {
        "features": features.specs,
        "category_levels": levels,
        "best_iteration": best,
        "lightgbm_params": lgb_params(params, seed=seed),
        "lightgbm_version": lgb.__version__,
        "split": {"method": method, "valid_fraction": split.valid_fraction,
                  "test_fraction": split.test_fraction, **summary},
        "valid_auc": round(valid_auc, 6),
        "class_weight": params.class_weight,
        "tuning": tuning,
        "calibration": calibration.as_dict(),
        "recipe": features.recipe,
    }
    if describe:
        train_scores = score_points(calibration.apply(predict_rows(booster, x_train, num_iteration=best)))
        description |= {
            "typical_won": typical_won_values(x_train, y_train, features.specs),
            "drift_reference": reference_profile(x_train, features.specs, train_scores, bins=drift_bins),
            "train_data_sha256": train_sha256,
        }
    return TrainResult(booster=booster, best_iteration=best, description=description, split=slices)


def save_model(result: TrainResult, models_dir: Path, *, params_sha256: str) -> ModelMeta:
    """Write model.txt and model_meta.json (with the model's sha256 and version); return the metadata."""
    model_path = models_dir / MODEL_FILE
    with atomic_path(model_path) as tmp:
        result.booster.save_model(str(tmp), num_iteration=result.best_iteration)
    digest = sha256_file(model_path)
    meta = ModelMeta.model_validate({**result.description, "model_sha256": digest,
                                     "model_version": model_version(digest), "params_sha256": params_sha256})
    write_model_meta(models_dir / MODEL_META_FILE, meta)
    return meta
