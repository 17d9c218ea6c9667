"""The bootstrap's fast ROC AUC and ECE against the library calls they replace: the same figures to the
last bit, so that the evaluation's intervals do not move when the arithmetic gets faster."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from pipeline.modeling.calibration import expected_calibration_error, reliability_curve
from pipeline.modeling.metrics import RankedScores, bootstrap_auc, paired_bootstrap

# Scores drawn from a few levels tie often (as calibrated isotonic scores and rule baselines do).
LEVELS = (0.0, 0.1, 0.25, 0.5, 0.5000000000000001, 0.75, 1.0)


@st.composite
def scored_resample(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes (both present), scores with ties, and a resample of the rows with repeats (row multiplicities)."""
    n = draw(st.integers(min_value=2, max_value=300))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < draw(st.floats(min_value=0.05, max_value=0.95))).astype(int)
    y[:2] = (0, 1)
    tied = draw(st.booleans())
    p = rng.choice(LEVELS, n) if tied else rng.random(n)
    rows = rng.integers(0, n, draw(st.integers(min_value=2, max_value=2 * n)))
    rows[:2] = (0, 1)  # both outcomes in the resample
    return y, p, rows


def _sklearn_interval(y: np.ndarray, p: np.ndarray, *, rounds: int, confidence: float, seed: int
                      ) -> tuple[float, float]:
    """bootstrap_auc as it was written with sklearn: the reference the fast one must reproduce."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], p[idx]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


@settings(max_examples=50, deadline=None)
@given(scored_resample())
def test_fast_auc_is_sklearns_to_the_bit_on_any_resample(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Exactness rule: the counted AUC of a resample (ties as midranks, repeats as multiplicities) equals
    roc_auc_score on the resampled arrays exactly, not only approximately."""
    y, p, rows = case
    assert RankedScores(y, p).auc(rows) == roc_auc_score(y[rows], p[rows])


@settings(max_examples=50, deadline=None)
@given(scored_resample())
def test_fast_auc_on_every_row_once_is_sklearns(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Exactness rule: with every row once (the paired bootstrap's point estimate) it is roc_auc_score(y, p)."""
    y, p, _ = case
    assert RankedScores(y, p).auc(np.arange(len(y))) == roc_auc_score(y, p)


def test_fast_auc_of_a_one_outcome_resample_is_nan() -> None:
    """Undefined rule: a resample with only won (or only lost) deals has no AUC (NaN), as in sklearn."""
    ranked = RankedScores(np.array([0, 1, 1]), np.array([0.2, 0.4, 0.9]))
    assert np.isnan(ranked.auc(np.array([1, 2, 2])))
    assert np.isnan(ranked.auc(np.array([0, 0])))


@pytest.mark.parametrize(("y", "p"), [
    (np.array([0, 1]), np.array([0.2, np.nan])),
    (np.array([0, 1]), np.array([0.2, np.inf])),
    (np.array([0, 2]), np.array([0.2, 0.3])),
    (np.array([0, 1, 1]), np.array([0.2, 0.3])),
], ids=["nan-score", "infinite-score", "label-not-0-1", "length-mismatch"])
def test_fast_auc_refuses_what_sklearn_refuses(y: np.ndarray, p: np.ndarray) -> None:
    """Input rule: scores that are not finite, labels that are not 0/1, or mismatched lengths raise
    ValueError (as roc_auc_score does) instead of giving a figure."""
    with pytest.raises(ValueError):
        RankedScores(y, p)


@pytest.mark.parametrize("tied", [False, True], ids=["distinct-scores", "tied-scores"])
def test_bootstrap_interval_is_the_sklearn_loops(rng: np.random.Generator, tied: bool) -> None:
    """Same-resamples rule: the interval comes from the same draws and the same per-round AUCs as the
    sklearn loop it replaces, so it is identical, not merely close."""
    y = (rng.random(400) < 0.3).astype(int)
    p = rng.choice(LEVELS, 400) if tied else rng.random(400)
    assert (bootstrap_auc(y, p, rounds=200, confidence=0.9, seed=7)
            == _sklearn_interval(y, p, rounds=200, confidence=0.9, seed=7))


def test_paired_bootstrap_matches_the_sklearn_loop(rng: np.random.Generator) -> None:
    """Same-resamples rule: the paired differences (AUC, Brier, ECE) and their intervals are those of
    per-round roc_auc_score on the same resamples."""
    y = (rng.random(300) < 0.4).astype(int)
    p, q = rng.random(300), np.round(rng.random(300), 1)
    rounds, confidence, seed, bins = 150, 0.95, 11, 10

    def measures(rows: np.ndarray) -> np.ndarray:
        yy = y[rows]
        return np.array([roc_auc_score(yy, p[rows]) - roc_auc_score(yy, q[rows]),
                         np.mean((p[rows] - yy) ** 2) - np.mean((q[rows] - yy) ** 2),
                         expected_calibration_error(yy, p[rows], bins=bins)
                         - expected_calibration_error(yy, q[rows], bins=bins)])

    draw = np.random.default_rng(seed)
    draws = [measures(rows) for rows in (draw.integers(0, 300, 300) for _ in range(rounds))]
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    point = measures(np.arange(300))
    found = paired_bootstrap(y, p, q, rounds=rounds, confidence=confidence, seed=seed, bins=bins)
    for i, name in enumerate(("roc_auc", "brier", "ece")):
        assert found[name] == {"delta": round(float(point[i]), 6), "low": round(float(low[i]), 6),
                               "high": round(float(high[i]), 6)}


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=200),
       st.sampled_from([1, 3, 10, 40]))
def test_ece_is_the_reliability_curves_weighted_gap(seed: int, n: int, bins: int) -> None:
    """One-definition rule: the ECE (computed from arrays, per bootstrap round) is exactly the
    count-weighted gap of the reliability curve the evaluation draws."""
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 2, n), np.round(rng.random(n), 2)
    curve = reliability_curve(y, p, bins=bins)
    gaps = (curve["mean_predicted"] - curve["observed_rate"]).abs()
    assert expected_calibration_error(y, p, bins=bins) == float((curve["count"] * gaps).sum() / curve["count"].sum())
