"""The evaluate stage: the model on the newest closed deals it never saw, in figures and curves.

Writes ``metrics.json`` (for ``dvc metrics show``), curve files (for ``dvc plots show``), and the
same figures to the model's MLflow run. If the model is no better than chance on the holdout,
the metrics say so (``better_than_chance: false``) and the stage logs a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline.config import EvaluateParams, Settings
from pipeline.features import FeatureSet, read_feature_set
from pipeline.io import atomic_path, write_json
from pipeline.model import LoadedModel, check_features_match, load_model
from pipeline.split import split_rows
from pipeline.tracking import log_evaluation

log = logging.getLogger(__name__)

CURVE_POINTS = 101


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, pd.DataFrame]   # roc, precision_recall, gains


def holdout(features: FeatureSet, *, valid_fraction: float, test_fraction: float, seed: int) -> pd.DataFrame:
    """The test slice: the same closed records (the newest, when there are dates) that training held out."""
    labeled = features.matrix[features.matrix["label"].notna()]
    split, _ = split_rows(labeled, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    return labeled[split == "test"]


def bootstrap_auc(y: np.ndarray, p: np.ndarray, *, rounds: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval for the ROC AUC (resampling deals with replacement)."""
    if rounds == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], p[idx]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float) -> tuple[float, float]:
    """(lift, capture rate) in the top ``fraction`` of deals by score."""
    k = max(1, round(len(y) * fraction))
    top = np.argsort(-p, kind="stable")[:k]
    base = y.mean()
    return float(y[top].mean() / base), float(y[top].sum() / y.sum())


def _curves(y: np.ndarray, p: np.ndarray) -> dict[str, pd.DataFrame]:
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    grid = np.linspace(0, 1, CURVE_POINTS)
    order = np.argsort(-p, kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
    share = np.arange(len(y) + 1) / len(y)
    return {
        "roc": pd.DataFrame({"fpr": grid, "tpr": np.interp(grid, fpr, tpr)}).round(6),
        "precision_recall": pd.DataFrame({
            "recall": grid, "precision": np.interp(grid, recall[::-1], precision[::-1])}).round(6),
        "gains": pd.DataFrame({"share_of_deals": grid, "share_of_won": np.interp(grid, share, captured)}).round(6),
    }


def evaluate(model: LoadedModel, test: pd.DataFrame, *, params: EvaluateParams, seed: int) -> Evaluation:
    """Holdout metrics and curves for ``model`` on the closed deals in ``test``."""
    y = test["label"].to_numpy(dtype=int)
    p = model.predict_proba(test)
    auc = float(roc_auc_score(y, p))
    low, high = bootstrap_auc(y, p, rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed)
    lift, capture = lift_at(y, p, params.top_fraction)
    pct = round(params.top_fraction * 100)
    metrics: dict[str, Any] = {
        "roc_auc": auc,
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "base_rate": float(y.mean()),
        "brier_base_rate": float(brier_score_loss(y, np.full_like(p, y.mean()))),
        f"lift_top_{pct}pct": lift,
        f"capture_top_{pct}pct": capture,
        "n_test": len(y),
        "n_test_won": int(y.sum()),
    }
    metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    metrics["better_than_chance"] = bool(low > 0.5) if params.bootstrap_rounds else bool(auc > 0.5)
    metrics["model_version"] = model.version
    metrics["split"] = model.meta["split"]["method"]
    return Evaluation(metrics=metrics, curves=_curves(y, p))


def verdict(metrics: dict[str, Any], *, confidence: float) -> str:
    """One plain sentence on whether the model beats chance on the holdout."""
    auc, low, high = metrics["roc_auc"], metrics["roc_auc_ci_low"], metrics["roc_auc_ci_high"]
    where = f"holdout ROC AUC {auc:.3f} ({confidence:.0%} CI {low:.3f}-{high:.3f}) on {metrics['n_test']} deals"
    if metrics["better_than_chance"]:
        return f"{where}: better than chance (base rate {metrics['base_rate']:.3f})"
    return (f"{where}: NOT better than chance. The model ranks deals no better than the base rate "
            f"({metrics['base_rate']:.3f}); do not use its scores to prioritise leads")


def write_evaluation(evaluation: Evaluation, *, metrics_path: Path, plots_dir: Path) -> list[Path]:
    write_json(metrics_path, evaluation.metrics)
    written = [metrics_path]
    for name, frame in evaluation.curves.items():
        path = plots_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        written.append(path)
    return written


def run(settings: Settings) -> Evaluation:
    """The evaluate stage: model + holdout -> metrics.json, plots, and the MLflow run."""
    model = load_model(settings.paths.models)
    features = read_feature_set(settings.paths.features)
    check_features_match(model, features)
    test = holdout(features, valid_fraction=settings.train.valid_fraction,
                   test_fraction=settings.train.test_fraction, seed=settings.seed)
    evaluation = evaluate(model, test, params=settings.evaluate, seed=settings.seed)
    written = write_evaluation(evaluation, metrics_path=settings.paths.metrics, plots_dir=settings.paths.plots)
    sentence = verdict(evaluation.metrics, confidence=settings.evaluate.confidence)
    if evaluation.metrics["better_than_chance"]:
        log.info(sentence)
    else:
        log.warning(sentence)
    numeric = {k: float(v) for k, v in evaluation.metrics.items() if isinstance(v, int | float)}
    log_evaluation(settings, model_sha256=model.meta["model_sha256"], metrics=numeric, artifacts=written)
    return evaluation
