"""Probability calibration: LightGBM's raw probabilities -> probabilities a sales rep can take at face value.

The train stage fits a :class:`Calibration` on the validation slice and stores :meth:`Calibration.as_dict`
in the model metadata; scoring rebuilds it with :meth:`Calibration.from_dict`. Both methods are kept as
plain numbers (Platt's slope and intercept, isotonic's breakpoints), so the metadata stays JSON and
applying a loaded calibration gives exactly what the fitted one did. Fitting is deterministic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from pipeline.errors import ModelError

log = logging.getLogger(__name__)

METHODS = ("isotonic", "platt", "none")
# Calibrated probabilities stay strictly inside (0, 1) so that log-odds and log loss remain finite.
EPS = 1e-6
# Platt scaling is meant to be unregularised; lbfgs with a huge C is that, and deterministic.
PLATT_C = 1e6
PLATT_MAX_ITER = 1000


@dataclass(frozen=True)
class Calibration:
    """A fitted map from raw to calibrated probabilities, as JSON-ready numbers.

    ``params`` is ``{"a", "b"}`` for Platt (``sigmoid(a * logit(p) + b)``), ``{"x", "y"}`` breakpoints for
    isotonic (linear interpolation, flat beyond the ends) and ``{}`` for none. ``chosen_by`` records why
    this method was used: the cross-validated Brier scores, or the reason there were none.
    """

    method: str
    params: dict[str, Any]
    chosen_by: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_params(self.method, self.params)

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw probabilities ``p``, within [EPS, 1 - EPS]; "none" returns ``p``."""
        raw = _check_probabilities(p)
        if self.method == "none":
            return p
        if self.method == "platt":
            out = expit(self.params["a"] * logit(np.clip(raw, EPS, 1 - EPS)) + self.params["b"])
        else:
            out = np.interp(raw, np.asarray(self.params["x"], dtype=float), np.asarray(self.params["y"], dtype=float))
        return np.clip(out, EPS, 1 - EPS)

    def as_dict(self) -> dict[str, Any]:
        """The calibration as plain floats, lists and strings, for the model metadata."""
        return {"method": self.method, "params": _plain(self.params), "chosen_by": _plain(self.chosen_by)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Rebuild a calibration saved by :meth:`as_dict`; a damaged entry raises :class:`ModelError`."""
        if not isinstance(d, dict) or "method" not in d:
            raise ModelError("the model's calibration entry is not a mapping with a 'method' key")
        chosen_by = d.get("chosen_by", {})
        if not isinstance(chosen_by, dict):
            raise ModelError("the model's calibration 'chosen_by' is not a mapping")
        return cls(method=d["method"], params=d.get("params", {}), chosen_by=chosen_by)


def fit_calibration(y: np.ndarray, p: np.ndarray, *, method: str, seed: int,
                    folds: int = 5) -> Calibration:
    """Fit a calibration of raw probabilities ``p`` to labels ``y`` (the validation slice).

    "auto" picks isotonic or Platt by the lower total Brier score over stratified ``folds``-fold
    cross-validation on these rows (a tie goes to Platt, the simpler), then refits it on all of them.
    With fewer than 2 rows of a class per fold it falls back to Platt, or to none if a class has
    fewer than 2 rows in all, and says why in ``chosen_by``.
    """
    labels, raw = _check_inputs(y, p)
    if method in ("isotonic", "platt", "none"):
        return _fit(method, labels, raw, chosen_by={"reason": f"method {method!r} requested"})
    if method != "auto":
        raise ValueError(f"unknown calibration method {method!r}; expected auto, {', '.join(METHODS)}")
    if folds < 2:
        raise ValueError(f"calibration needs at least 2 cross-validation folds, got {folds}")

    n_pos = int(labels.sum())
    fewest = min(n_pos, len(labels) - n_pos)
    if fewest < 2 * folds:
        fallback = "platt" if fewest >= 2 else "none"
        reason = (f"{n_pos} won / {len(labels) - n_pos} lost rows: too few to cross-validate with {folds} folds "
                  f"(2 of each class per fold), so {fallback}")
        log.warning("Calibration: %s", reason)
        return _fit(fallback, labels, raw, chosen_by={"reason": reason, "folds": folds})

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    totals = {"isotonic": 0.0, "platt": 0.0}
    for fit_rows, held_out in splitter.split(raw.reshape(-1, 1), labels.astype(int)):
        for name in totals:
            fitted = _fit(name, labels[fit_rows], raw[fit_rows], chosen_by={})
            totals[name] += float(np.mean((fitted.apply(raw[held_out]) - labels[held_out]) ** 2))
    chosen = "isotonic" if totals["isotonic"] < totals["platt"] else "platt"
    cv_brier = {name: total / folds for name, total in totals.items()}
    log.info("Calibration: %s (cross-validated Brier isotonic %.5f, platt %.5f)",
             chosen, cv_brier["isotonic"], cv_brier["platt"])
    return _fit(chosen, labels, raw, chosen_by={"cv_brier": cv_brier, "folds": folds})


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int) -> float:
    """Mean gap between predicted and observed rates over equal-width bins, weighted by each bin's rows."""
    _, mean_predicted, observed_rate, count = _bin_rates(y, p, bins=bins)
    return float((count * np.abs(mean_predicted - observed_rate)).sum() / count.sum())


def reliability_curve(y: np.ndarray, p: np.ndarray, *, bins: int) -> pd.DataFrame:
    """Mean predicted probability and observed rate per equal-width bin of [0, 1], non-empty bins only.

    A row goes to bin ``floor(p * bins)``; 1.0 goes to the last bin.
    """
    filled, mean_predicted, observed_rate, count = _bin_rates(y, p, bins=bins)
    return pd.DataFrame({"bin": filled, "mean_predicted": mean_predicted, "observed_rate": observed_rate,
                         "count": count})


def _bin_rates(y: np.ndarray, p: np.ndarray, *, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`reliability_curve`'s columns as arrays (bin, mean_predicted, observed_rate, count), so that the
    ECE, computed once per bootstrap round, builds no DataFrame."""
    labels, raw = _check_inputs(y, p)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    index = np.minimum((raw * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    filled = count > 0
    return (np.flatnonzero(filled), np.bincount(index, weights=raw, minlength=bins)[filled] / count[filled],
            np.bincount(index, weights=labels, minlength=bins)[filled] / count[filled], count[filled])


def _fit(method: str, y: np.ndarray, p: np.ndarray, *, chosen_by: dict[str, Any]) -> Calibration:
    """Fit one named method on all of ``y``, ``p`` (already checked)."""
    if method == "none":
        return Calibration("none", {}, chosen_by)
    if method == "platt":
        if y.min() == y.max():
            raise ValueError("Platt calibration needs both won and lost rows; got only one class")
        model = LogisticRegression(C=PLATT_C, solver="lbfgs", max_iter=PLATT_MAX_ITER)
        model.fit(logit(np.clip(p, EPS, 1 - EPS)).reshape(-1, 1), y.astype(int))
        return Calibration("platt", {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}, chosen_by)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True).fit(p, y)
    return Calibration("isotonic", {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}, chosen_by)


def _check_params(method: str, params: Any) -> None:
    """Raise ModelError unless ``params`` is a usable parameter set for ``method``."""
    if method not in METHODS:
        raise ModelError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if not isinstance(params, dict):
        raise ModelError(f"{method} calibration params must be a mapping, got {type(params).__name__}")
    expected = {"platt": {"a", "b"}, "isotonic": {"x", "y"}, "none": set()}[method]
    if set(params) != expected:
        raise ModelError(f"{method} calibration params must have keys {sorted(expected)}, got {sorted(params)}")
    if method == "platt":
        for key in ("a", "b"):
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise ModelError(f"platt calibration param {key!r} must be a finite number, got {value!r}")
    elif method == "isotonic":
        x, y = params["x"], params["y"]
        if not (isinstance(x, list) and isinstance(y, list) and len(x) == len(y) > 0):
            raise ModelError("isotonic calibration params 'x' and 'y' must be non-empty lists of the same length")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in x + y):
            raise ModelError("isotonic calibration breakpoints must all be numbers")
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise ModelError("isotonic calibration breakpoints must be finite")
        if (np.diff(xs) < 0).any() or (np.diff(ys) < 0).any():
            raise ModelError("isotonic calibration breakpoints must be non-decreasing in both 'x' and 'y'")
        if ys.min() < 0 or ys.max() > 1:
            raise ModelError("isotonic calibration 'y' breakpoints must lie within [0, 1]")


def _check_probabilities(p: np.ndarray) -> np.ndarray:
    """``p`` as a 1-D float array; ValueError unless every value is a finite probability."""
    raw = np.asarray(p, dtype=float)
    if raw.ndim != 1:
        raise ValueError(f"probabilities must be one-dimensional, got shape {raw.shape}")
    if not np.isfinite(raw).all():
        raise ValueError(f"probabilities must be finite; {int((~np.isfinite(raw)).sum())} are NaN or infinite")
    if raw.size and (raw.min() < 0 or raw.max() > 1):
        raise ValueError(f"probabilities must lie within [0, 1], got range [{raw.min()}, {raw.max()}]")
    return raw


def _check_inputs(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities as float arrays; ValueError if empty, mismatched, or not 0/1 and [0, 1]."""
    raw = _check_probabilities(p)
    labels = np.asarray(y, dtype=float)
    if labels.ndim != 1 or len(labels) != len(raw):
        raise ValueError(f"labels and probabilities must be 1-D and the same length, got {labels.shape} "
                         f"and {raw.shape}")
    if len(labels) == 0:
        raise ValueError("labels and probabilities are empty")
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"labels must be 0 or 1; {int(bad.sum())} are not (e.g. {float(labels[bad][0])})")
    return labels, raw


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python floats, ints and lists, for json.dumps."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
