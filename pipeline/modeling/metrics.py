"""Holdout figures of a model and of its baselines on the newest closed deals it never saw.

ROC and PR AUC with a bootstrap interval, log loss, Brier and calibration error before and after
calibration, lift and capture at the top of the list, conversion by grade, and the curves that
``dvc plots show`` draws. A model that is no better than chance is said to be so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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

from pipeline.config import EvaluateParams, SplitParams
from pipeline.contracts.features import FeatureSet
from pipeline.modeling.baselines import baseline_scores
from pipeline.modeling.calibration import expected_calibration_error, reliability_curve
from pipeline.modeling.grades import GRADES, grade, score_points
from pipeline.modeling.model import LoadedModel
from pipeline.modeling.split import SPLITS, MatrixSplit

log = logging.getLogger(__name__)

CURVE_POINTS = 101


def slices(features: FeatureSet, *, split: SplitParams, seed: int,
           columns: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """train / valid / test: the closed records split exactly as the train stage split them (the
    test slice is the holdout: the newest, when there are dates); every column, or only ``columns``."""
    parts = MatrixSplit(features.matrix, valid_fraction=split.valid_fraction, test_fraction=split.test_fraction,
                        seed=seed)
    return {name: parts.rows(name, columns) for name in SPLITS}


class RankedScores:
    """Scores ranked once, so that the ROC AUC of any resample of their deals (rows drawn with repeats)
    needs only a count of won and lost deals per distinct score, not a sort: :meth:`auc` returns what
    ``roc_auc_score(y[rows], p[rows])`` does, to the last bit (the same cumulative counts, the same collinear
    points dropped, the same trapezoids summed in the same order), tied scores sharing one point as there."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        """``y``: 1 won, 0 lost; ``p``: the scores of the same deals (finite; higher: more likely won)."""
        won, scores = np.asarray(y), np.asarray(p, dtype=float)
        if won.ndim != 1 or won.shape != scores.shape or not np.isin(won, (0, 1)).all():
            raise ValueError(f"labels must be 0 or 1 and match the scores' shape, got {won.shape} and {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError(f"scores must be finite; {int((~np.isfinite(scores)).sum())} are NaN or infinite")
        distinct, rank = np.unique(scores, return_inverse=True)
        # Each deal's cell: its score's place from the highest (0) down, times two, plus 1 if it was won.
        self._cell = (len(distinct) - 1 - rank.ravel()) * 2 + (won == 1)
        self._cells = 2 * len(distinct)

    def auc(self, rows: np.ndarray) -> float:
        """ROC AUC of the deals at ``rows`` (indices, repeats counted; NaN unless both outcomes occur)."""
        counts = np.bincount(self._cell[rows], minlength=self._cells).reshape(-1, 2)
        counts = counts[counts.any(axis=1)]  # one row per distinct score the resample holds, highest first
        fps = np.cumsum(counts[:, 0], dtype=float)
        tps = np.cumsum(counts[:, 1], dtype=float)
        if fps[-1] == 0 or tps[-1] == 0:
            return float("nan")
        if len(fps) > 2:
            keep = np.concatenate([[True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]])
            fps, tps = fps[keep], tps[keep]
        fpr = np.concatenate([[0.0], fps]) / fps[-1]
        tpr = np.concatenate([[0.0], tps]) / tps[-1]
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def bootstrap_auc(y: np.ndarray, p: np.ndarray, *, rounds: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval for the ROC AUC (resampling deals with replacement)."""
    if rounds == 0:
        return float("nan"), float("nan")
    ranked = RankedScores(y, p)
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            aucs.append(ranked.auc(idx))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(y: np.ndarray, p: np.ndarray, q: np.ndarray, *, rounds: int, confidence: float, seed: int,
                     bins: int) -> dict[str, dict[str, float]]:
    """``p`` against ``q`` on the same deals: for the ROC AUC, the Brier score and the ECE, the difference
    p − q and its percentile interval, every bootstrap round resampling the deals once for both, so the
    deals' own noise cancels out of the difference. (A higher AUC is better; a lower Brier or ECE is.)"""
    ranked_p, ranked_q = RankedScores(y, p), RankedScores(y, q)

    def measures(rows: np.ndarray) -> np.ndarray:
        yy = y[rows]
        return np.array([ranked_p.auc(rows) - ranked_q.auc(rows),
                         np.mean((p[rows] - yy) ** 2) - np.mean((q[rows] - yy) ** 2),
                         expected_calibration_error(yy, p[rows], bins=bins)
                         - expected_calibration_error(yy, q[rows], bins=bins)])

    point = measures(np.arange(len(y)))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() != y[rows].max():
            draws.append(measures(rows))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.array(draws), [tail, 100 - tail], axis=0) if draws else (point, point)
    return {name: {"delta": round(float(point[i]), 6), "low": round(float(low[i]), 6),
                   "high": round(float(high[i]), 6)}
            for i, name in enumerate(("roc_auc", "brier", "ece"))}


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


def figures(y: np.ndarray, p: np.ndarray, *, params: EvaluateParams) -> dict[str, float]:
    """Holdout figures of one set of scores (a model's or a baseline's)."""
    p = np.clip(p, 0.0, 1.0)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, bins=params.calibration_bins),
    }
    for fraction in params.top_fractions:
        pct = round(fraction * 100)
        out[f"lift_top_{pct}pct"], out[f"capture_top_{pct}pct"] = lift_at(y, p, fraction)
    return out


def conversion_by_grade(y: np.ndarray, p: np.ndarray, bands: list[float]) -> dict[str, dict[str, float | None]]:
    """Deals, won and conversion rate per grade, the grades cut from the score as scoring cuts them."""
    grades = grade(score_points(p), bands)
    out = {}
    for g in GRADES:
        mask = grades == g
        n, won = int(mask.sum()), int(y[mask].sum())
        out[g] = {"deals": n, "won": won, "rate": round(won / n, 6) if n else None}
    return out


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, pd.DataFrame]   # roc, precision_recall, gains, calibration
    y: np.ndarray                     # the holdout's outcomes (1 won)
    p: np.ndarray                     # the model's calibrated probabilities on it, for paired comparisons


def evaluate(model: LoadedModel, test: pd.DataFrame, *, params: EvaluateParams, seed: int,
             grade_bands: list[float], train: pd.DataFrame | None = None) -> Evaluation:
    """Holdout metrics and curves for ``model`` (calibrated) on the closed deals in ``test``, and for
    every baseline fitted on ``train`` (if given) on the same deals."""
    y = test["label"].to_numpy(dtype=int)
    raw = model.raw_proba(test)
    p = model.calibration.apply(raw)
    found = figures(y, p, params=params)
    auc = found["roc_auc"]
    low, high = bootstrap_auc(y, p, rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed)
    metrics: dict[str, Any] = {"roc_auc": auc, "roc_auc_ci_low": low, "roc_auc_ci_high": high,
                               **{k: v for k, v in found.items() if k != "roc_auc"}}
    metrics["ece_before_calibration"] = expected_calibration_error(y, raw, bins=params.calibration_bins)
    metrics["brier_before_calibration"] = float(brier_score_loss(y, raw))
    metrics["base_rate"] = float(y.mean())
    metrics["n_test"], metrics["n_test_won"] = len(y), int(y.sum())
    metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    metrics["better_than_chance"] = bool(low > 0.5) if params.bootstrap_rounds else bool(auc > 0.5)
    metrics["calibration"] = model.calibration.method
    metrics["conversion_by_grade"] = conversion_by_grade(y, p, grade_bands)
    if train is not None:
        scores = baseline_scores(train, test, model.specs, seed=seed, max_rows=params.baseline_max_rows)
        metrics["baselines"] = {}
        for name, s in scores.items():
            b_low, b_high = bootstrap_auc(y, s, rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed)
            found = figures(y, s, params=params) | {"roc_auc_ci_low": b_low, "roc_auc_ci_high": b_high}
            metrics["baselines"][name] = {k: round(v, 6) for k, v in found.items()}
            metrics["baselines"][name]["model_minus_baseline"] = paired_bootstrap(
                y, p, np.clip(s, 0.0, 1.0), rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed,
                bins=params.calibration_bins)
    metrics["model_version"] = model.version
    metrics["split"] = model.meta.split.method
    curves = _curves(y, p)
    before = reliability_curve(y, raw, bins=params.calibration_bins).assign(stage="before")
    after = reliability_curve(y, p, bins=params.calibration_bins).assign(stage="after")
    curves["calibration"] = pd.concat([before, after], ignore_index=True).round(6)
    return Evaluation(metrics=metrics, curves=curves, y=y, p=p)


VERDICT_FIGURES = ("roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "n_test", "base_rate", "better_than_chance")


@dataclass(frozen=True)
class Verdict:
    """What the holdout says about a model's scores, once, for every place that says it (the evaluate
    log, the model card, the lead board's banner)."""

    kind: str        # chance: no better than chance; unpromoted: it failed another gate; sound
    sentence: str    # with the figures: the log and the model card
    advice: str      # what a rep should do with the scores ("" for a sound model): the board's banner

    @property
    def warns(self) -> bool:
        return self.kind != "sound"


def holdout_figures(metrics: dict[str, Any], *, confidence: float) -> dict[str, Any]:
    """What :func:`model_verdict` needs, to keep beside a decision (promotion.json) for later readers."""
    return {k: metrics[k] for k in VERDICT_FIGURES} | {"confidence": confidence}


def model_verdict(metrics: dict[str, Any] | None, *, confidence: float | None = None,
                  promoted: bool | None = None) -> Verdict:
    """The verdict on a model from its holdout figures (``metrics``: at least :data:`VERDICT_FIGURES`,
    as :func:`holdout_figures` keeps them; None when they are not at hand) and whether it passed the
    gates (``promoted``; None: not known). No better than chance: do not use its scores to prioritise
    leads. Better, but not promoted: a rough guide only."""
    if metrics is not None:
        auc, low, high = metrics["roc_auc"], metrics["roc_auc_ci_low"], metrics["roc_auc_ci_high"]
        level = confidence if confidence is not None else metrics.get("confidence")
        ci = f"{level:.0%} CI" if level is not None else "CI"
        where = f"holdout ROC AUC {auc:.3f} ({ci} {low:.3f}-{high:.3f}) on {metrics['n_test']} deals"
        if not metrics["better_than_chance"]:
            return Verdict("chance", f"{where}: NOT better than chance. The model ranks deals no better than the "
                           f"base rate ({metrics['base_rate']:.3f}); do not use its scores to prioritise leads",
                           f"The model is no better than chance on the newest closed deals (ROC AUC {auc:.3f}): "
                           "do not use its scores to prioritise leads.")
        head = f"{where}: better than chance (base rate {metrics['base_rate']:.3f})"
    else:
        head = "holdout figures not at hand"
    if promoted is False:
        return Verdict("unpromoted", f"{head}; it did not pass the quality gates: use its scores as a rough guide "
                       "only", "Scores come from a model that did not pass the quality gates (model status: "
                       "unpromoted). Use them as a rough guide only, not to decide which leads to drop.")
    return Verdict("sound", head, "")


def verdict(metrics: dict[str, Any], *, confidence: float) -> str:
    """One plain sentence on whether the model beats chance on the holdout (:func:`model_verdict`'s)."""
    return model_verdict(metrics, confidence=confidence).sentence
