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
from sklearn.metrics import roc_auc_score

from pipeline.features.spec import FeatureSpec
from pipeline.split import split_rows

log = logging.getLogger(__name__)
SMOOTHING = 10.0  # pseudo-counts pulling a rare value's won rate towards the overall rate
MAX_TRAIN_ROWS = 200_000


def single_feature_auc(train: pd.Series, y_train: np.ndarray, valid: pd.Series, y_valid: np.ndarray, *,
                       kind: str) -> float:
    """How well this one feature alone ranks won above lost on the validation slice (0.5 to 1)."""
    if len(np.unique(y_valid)) < 2:
        return float("nan")
    if kind == "categorical":
        key_train = train.astype("string").fillna("\0missing")
        key_valid = valid.astype("string").fillna("\0missing")
        prior = y_train.mean()
        stats = pd.DataFrame({"k": key_train.to_numpy(), "y": y_train}).groupby("k")["y"].agg(["sum", "count"])
        rate = (stats["sum"] + SMOOTHING * prior) / (stats["count"] + SMOOTHING)
        score = key_valid.map(rate).astype(float).fillna(prior).to_numpy()
    else:
        x = pd.to_numeric(valid, errors="coerce").to_numpy(dtype=float)
        lowest = np.nanmin(x) - 1 if np.isfinite(x).any() else 0.0
        score = np.where(np.isnan(x), lowest, x)
    auc = float(roc_auc_score(y_valid, score))
    return max(auc, 1 - auc)


def audit_leakage(matrix: pd.DataFrame, specs: list[FeatureSpec], *, max_auc: float, valid_fraction: float,
                  test_fraction: float, seed: int) -> tuple[list[FeatureSpec], dict[str, Any]]:
    """The specs to keep, and a report: each feature's single-feature AUC and what was dropped."""
    columns = ["record_id", "as_of", "label", *(s.name for s in specs)]
    labeled = matrix.loc[matrix["label"].notna(), columns]
    split, _ = split_rows(labeled, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    train, valid = labeled[split == "train"], labeled[split == "valid"]
    if len(train) > MAX_TRAIN_ROWS:  # per-value won rates are stable long before a million rows
        train = train.sample(MAX_TRAIN_ROWS, random_state=seed)
    y_train, y_valid = train["label"].to_numpy(dtype=int), valid["label"].to_numpy(dtype=int)
    aucs = {s.name: single_feature_auc(train[s.name], y_train, valid[s.name], y_valid, kind=s.kind) for s in specs}
    dropped = {name: round(auc, 4) for name, auc in aucs.items() if auc > max_auc}
    for name, auc in dropped.items():
        log.warning("leakage guard: dropping %s: alone it separates won from lost with ROC AUC %.3f (> %.2f); "
                    "it is probably filled in after the outcome", name, auc, max_auc)
    strongest = sorted(((round(a, 4), n) for n, a in aucs.items() if not np.isnan(a)), reverse=True)[:10]
    report = {"max_auc": max_auc, "dropped": dropped, "strongest": {n: a for a, n in strongest}}
    return [s for s in specs if s.name not in dropped], report
