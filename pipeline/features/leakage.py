"""Leakage guard: a feature that alone separates won from lost almost perfectly is dropped.

Such a feature is almost always filled in after the outcome (a customer-success owner, a
contract number). Each feature's single-feature ROC AUC is measured out of sample: a categorical
feature's per-value won rate is learned on the training slice, and every feature is scored on
the validation slice (the test slice stays untouched for evaluation).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from pipeline.features.spec import FeatureSpec
from pipeline.split import split_rows

log = logging.getLogger(__name__)
SMOOTHING = 10.0  # pseudo-counts pulling a rare value's won rate towards the overall rate
MAX_TRAIN_ROWS = 200_000  # per-value won rates are stable long before a million rows
MAX_VALID_ROWS = 50_000  # an AUC on 50k rows has a standard error near 0.002: far finer than the threshold


def single_feature_auc(train: pd.Series | np.ndarray | None, y_train: np.ndarray, valid: pd.Series | np.ndarray,
                       y_valid: np.ndarray, *, kind: str) -> float:
    """How well this one feature alone ranks won above lost on the validation slice (0.5 to 1).
    A numeric feature is ranked as it is (``train`` is not needed: pass None)."""
    if len(np.unique(y_valid)) < 2:
        return float("nan")
    if kind == "categorical":
        # Won rate per value on the training rows, smoothed towards the prior; unseen values get the prior.
        assert train is not None
        both = pd.concat([pd.Series(train), pd.Series(valid)], ignore_index=True).astype("string")
        codes, _ = pd.factorize(both, use_na_sentinel=False)
        train_codes, valid_codes = codes[:len(train)], codes[len(train):]
        prior = y_train.mean()
        won = np.bincount(train_codes, weights=y_train, minlength=codes.max(initial=0) + 1)
        seen = np.bincount(train_codes, minlength=len(won))
        score = ((won + SMOOTHING * prior) / (seen + SMOOTHING))[valid_codes]
    else:
        x = pd.to_numeric(pd.Series(valid), errors="coerce").to_numpy(dtype=float)
        lowest = np.nanmin(x) - 1 if np.isfinite(x).any() else 0.0
        score = np.where(np.isnan(x), lowest, x)
    auc = _roc_auc(y_valid, score)
    return max(auc, 1 - auc)


def _roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half), from one ranking of the scores."""
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _at_most(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """``rows``, or a seeded random ``limit`` of them in their order."""
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, size=limit, replace=False))


def audit_leakage(matrix: pd.DataFrame, specs: list[FeatureSpec], *, max_auc: float, valid_fraction: float,
                  test_fraction: float, seed: int) -> tuple[list[FeatureSpec], dict[str, Any]]:
    """The specs to keep, and a report: each feature's single-feature AUC and what was dropped."""
    labeled = np.flatnonzero(matrix["label"].notna().to_numpy())
    split, _ = split_rows(matrix[["record_id", "as_of", "label"]].iloc[labeled], valid_fraction=valid_fraction,
                          test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    train = _at_most(labeled[(split == "train").to_numpy()], MAX_TRAIN_ROWS, rng)
    valid = _at_most(labeled[(split == "valid").to_numpy()], MAX_VALID_ROWS, rng)
    label = matrix["label"].to_numpy()
    y_train, y_valid = label[train].astype(int), label[valid].astype(int)

    def rows(spec: FeatureSpec, positions: np.ndarray) -> pd.Series | np.ndarray:
        if spec.kind == "categorical":
            return matrix[spec.name].iloc[positions]  # text stays in Arrow
        return matrix[spec.name].to_numpy()[positions]  # a float column is a view: one gather

    aucs = {s.name: single_feature_auc(rows(s, train) if s.kind == "categorical" else None, y_train,
                                       rows(s, valid), y_valid, kind=s.kind) for s in specs}
    dropped = {name: round(auc, 4) for name, auc in aucs.items() if auc > max_auc}
    for name, auc in dropped.items():
        log.warning("leakage guard: dropping %s: alone it separates won from lost with ROC AUC %.3f (> %.2f); "
                    "it is probably filled in after the outcome", name, auc, max_auc)
    strongest = sorted(((round(a, 4), n) for n, a in aucs.items() if not np.isnan(a)), reverse=True)[:10]
    report = {"max_auc": max_auc, "dropped": dropped, "strongest": {n: a for a, n in strongest}}
    return [s for s in specs if s.name not in dropped], report
