"""How well one column alone tells won from lost: the statistic behind the leakage guard (features
stage) and `leadscore inspect`'s outcome-derived check, so both judge a column the same way.

A column that alone separates won from lost almost perfectly (ROC AUC near 1, in either direction)
is almost always filled in after the outcome. A numeric column is ranked as it is, missing values
below every value. A categorical column is ranked by its values' won rates, learned on other rows
than those it is judged on (a value seen once would otherwise give its own outcome away) and pulled
towards the overall rate by :data:`SMOOTHING` pseudo-rows, so a rare value says little.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

SMOOTHING = 10.0  # pseudo-rows pulling a value's won rate towards the overall rate


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half), from one ranking of the scores;
    ``y`` must hold both classes."""
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separation(y: np.ndarray, score: np.ndarray) -> float:
    """The ROC AUC of ``score`` for ``y`` whichever way it points: 0.5 (none) to 1 (perfect)."""
    auc = roc_auc(y, score)
    return max(auc, 1 - auc)


def numeric_score(values: np.ndarray) -> np.ndarray:
    """A numeric column as a ranking score: missing values below every value."""
    lowest = np.nanmin(values) - 1 if np.isfinite(values).any() else 0.0
    return np.where(np.isnan(values), lowest, values)


def won_rates(fit_codes: np.ndarray, fit_y: np.ndarray, codes: np.ndarray, *, n_codes: int) -> np.ndarray:
    """The won rate of each of ``codes``' values, learned from the rows ``fit_codes`` / ``fit_y``
    (codes 0 .. n_codes-1) and smoothed towards their overall rate; a value they lack gets that rate."""
    prior = float(fit_y.mean())
    won = np.bincount(fit_codes, weights=fit_y, minlength=n_codes)
    seen = np.bincount(fit_codes, minlength=n_codes)
    return ((won + SMOOTHING * prior) / (seen + SMOOTHING))[codes]


def out_of_fold_won_rates(codes: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each row's value's won rate, learned on the other folds (seeded): for a column judged on the
    same rows it is learned from."""
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    n_codes = int(codes.max(initial=-1)) + 1
    out = np.empty(len(y))
    for k in range(folds):
        held = fold == k
        out[held] = won_rates(codes[~held], y[~held], codes[held], n_codes=n_codes)
    return out
