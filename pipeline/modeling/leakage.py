"""Leakage guard: a feature that alone separates won from lost almost perfectly is dropped.

Such a feature is almost always filled in after the outcome (a customer-success owner, a
contract number). Each feature's single-feature ROC AUC (pipeline.data.separation, the statistic
`leadscore inspect` uses too) is measured out of sample: a categorical feature's per-value won rate
is learned on the training slice, and every feature is scored on the validation slice (the test
slice stays untouched for evaluation).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pipeline.contracts.features import FeatureSpec
from pipeline.data.separation import numeric_score, separation, won_rates
from pipeline.modeling.split import split_rows

log = logging.getLogger(__name__)
MAX_TRAIN_ROWS = 200_000  # per-value won rates are stable long before a million rows
MAX_VALID_ROWS = 50_000  # an AUC on 50k rows has a standard error near 0.002: far finer than the threshold


def single_feature_auc(train: pd.Series | np.ndarray | None, y_train: np.ndarray, valid: pd.Series | np.ndarray,
                       y_valid: np.ndarray, *, kind: str) -> float:
    """How well this one feature alone ranks won above lost on the validation slice (0.5 to 1);
    ``y_valid`` must hold both classes. A categorical feature is ranked by its values' won rates on
    the training slice; a numeric one as it is (``train`` is not needed: pass None)."""
    if kind == "categorical":
        assert train is not None
        both = pd.concat([pd.Series(train), pd.Series(valid)], ignore_index=True).astype("string")
        codes, _ = pd.factorize(both, use_na_sentinel=False)
        score = won_rates(codes[:len(train)], y_train, codes[len(train):], n_codes=int(codes.max(initial=0)) + 1)
    else:
        score = numeric_score(pd.to_numeric(pd.Series(valid), errors="coerce").to_numpy(dtype=float))
    return separation(y_valid, score)


def _at_most(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """``rows``, or a seeded random ``limit`` of them in their order."""
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, size=limit, replace=False))


class LeakageAudit:
    """The leakage guard, fed features as they are built: :meth:`split` once (from the keys and
    labels), :meth:`measure` for each group of features, then :meth:`finish`. The split and the
    samples depend on the seed and the records only, so the figures are the same whichever groups
    are measured when."""

    def __init__(self, *, max_auc: float, valid_fraction: float, test_fraction: float, seed: int) -> None:
        self.max_auc, self.valid_fraction, self.test_fraction, self.seed = max_auc, valid_fraction, test_fraction, seed
        self.aucs: dict[str, float] = {}
        self._train = self._valid = self._y_train = self._y_valid = np.empty(0, dtype=int)

    def split(self, keys: pd.DataFrame) -> None:
        """Which rows train and which validate: ``keys`` has ``record_id``, ``as_of`` and ``label``
        (missing for open records), one row per row of the matrices measured later."""
        labeled = np.flatnonzero(keys["label"].notna().to_numpy())
        split, _ = split_rows(keys[["record_id", "as_of", "label"]].iloc[labeled], valid_fraction=self.valid_fraction,
                              test_fraction=self.test_fraction, seed=self.seed)
        rng = np.random.default_rng(self.seed)
        self._train = _at_most(labeled[(split == "train").to_numpy()], MAX_TRAIN_ROWS, rng)
        self._valid = _at_most(labeled[(split == "valid").to_numpy()], MAX_VALID_ROWS, rng)
        label = keys["label"].to_numpy()
        self._y_train, self._y_valid = label[self._train].astype(int), label[self._valid].astype(int)

    def measure(self, matrix: pd.DataFrame, specs: list[FeatureSpec]) -> None:
        """The single-feature AUC of each of ``specs`` (columns of ``matrix``, rows as in :meth:`split`)."""
        def rows(spec: FeatureSpec, positions: np.ndarray) -> pd.Series | np.ndarray:
            if spec.kind == "categorical":
                return matrix[spec.name].iloc[positions]  # text stays in Arrow
            return matrix[spec.name].to_numpy(dtype=float)[positions]  # a float column is a view: one gather

        one_class = len(np.unique(self._y_valid)) < 2
        for s in specs:
            self.aucs[s.name] = float("nan") if one_class else single_feature_auc(
                rows(s, self._train) if s.kind == "categorical" else None, self._y_train, rows(s, self._valid),
                self._y_valid, kind=s.kind)

    def finish(self, specs: list[FeatureSpec]) -> tuple[list[FeatureSpec], dict[str, Any]]:
        """The specs to keep, and a report: each feature's single-feature AUC and what was dropped."""
        aucs = {s.name: self.aucs[s.name] for s in specs}
        dropped = {name: round(auc, 4) for name, auc in aucs.items() if auc > self.max_auc}
        for name, auc in dropped.items():
            log.warning("leakage guard: dropping %s: alone it separates won from lost with ROC AUC %.3f (> %.2f); "
                        "it is probably filled in after the outcome", name, auc, self.max_auc)
        strongest = sorted(((round(a, 4), n) for n, a in aucs.items() if not np.isnan(a)), reverse=True)[:10]
        report = {"max_auc": self.max_auc, "dropped": dropped, "strongest": {n: a for a, n in strongest}}
        return [s for s in specs if s.name not in dropped], report


def audit_leakage(matrix: pd.DataFrame, specs: list[FeatureSpec], *, max_auc: float, valid_fraction: float,
                  test_fraction: float, seed: int) -> tuple[list[FeatureSpec], dict[str, Any]]:
    """The specs to keep, and a report: each feature's single-feature AUC and what was dropped."""
    audit = LeakageAudit(max_auc=max_auc, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    audit.split(matrix)
    audit.measure(matrix, specs)
    return audit.finish(specs)
