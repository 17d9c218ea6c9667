import json

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss

from pipeline.config import EvaluateParams
from pipeline.errors import ModelError
from pipeline.modeling.calibration import (
    EPS,
    Calibration,
    expected_calibration_error,
    fit_calibration,
    reliability_curve,
)

BINS = EvaluateParams().calibration_bins


def draw(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    """Labels won with true probability ``q``."""
    return (rng.random(len(q)) < q).astype(int)


def platt_world(rng: np.random.Generator, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores whose true calibration map is a sigmoid of their log-odds: Platt's model exactly."""
    p = rng.uniform(0.02, 0.98, n)
    return draw(rng, expit(1.7 * logit(p) - 0.6)), p


def test_calibrating_on_one_half_fixes_the_other(rng: np.random.Generator) -> None:
    n = 20_000
    q = rng.beta(2, 5, n)
    y, p = draw(rng, q), q**3  # raw scores far too low, as an over-confident model's would be
    fit_rows, held_out = slice(0, n // 2), slice(n // 2, n)
    calibration = fit_calibration(y[fit_rows], p[fit_rows], seed=7, method="auto")
    after = calibration.apply(p[held_out])
    ece_before = expected_calibration_error(y[held_out], p[held_out], bins=BINS)
    ece_after = expected_calibration_error(y[held_out], after, bins=BINS)
    assert ece_after < 0.02
    assert ece_after < ece_before / 2
    assert brier_score_loss(y[held_out], after) <= brier_score_loss(y[held_out], p[held_out])


@pytest.mark.parametrize("method", ["platt", "isotonic", "none"])
def test_json_round_trip_applies_identically(rng: np.random.Generator, method: str) -> None:
    y, p = platt_world(rng)
    fitted = fit_calibration(y, p, method=method, seed=0)
    loaded = Calibration.from_dict(json.loads(json.dumps(fitted.as_dict())))
    assert loaded == fitted
    grid = np.concatenate([np.linspace(0, 1, 1001), rng.random(500)])
    np.testing.assert_array_equal(loaded.apply(grid), fitted.apply(grid))


def test_isotonic_breakpoints_reproduce_sklearn(rng: np.random.Generator) -> None:
    y, p = platt_world(rng)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True).fit(p, y)
    calibration = fit_calibration(y, p, method="isotonic", seed=0)
    grid = np.concatenate([np.linspace(0, 1, 2001), p])  # includes scores below and above the fitted range
    np.testing.assert_allclose(calibration.apply(grid), np.clip(iso.predict(grid), EPS, 1 - EPS), rtol=0, atol=1e-12)


def test_auto_is_deterministic_and_prefers_platt_when_platt_is_the_truth(rng: np.random.Generator) -> None:
    y, p = platt_world(rng)
    first, second = fit_calibration(y, p, seed=3, method="auto"), fit_calibration(y, p, seed=3, method="auto")
    assert first.as_dict() == second.as_dict()
    assert first.method == "platt"
    cv = first.chosen_by["cv_brier"]
    assert set(cv) == {"isotonic", "platt"} and cv["platt"] < cv["isotonic"]
    assert first.chosen_by["folds"] == 5
    # refit on all rows: the recovered map is close to the true one
    assert first.params["a"] == pytest.approx(1.7, abs=0.25)
    assert first.params["b"] == pytest.approx(-0.6, abs=0.25)


def test_auto_prefers_isotonic_for_a_step_shaped_truth(rng: np.random.Generator) -> None:
    p = rng.uniform(0.02, 0.98, 2000)
    y = draw(rng, np.where(p < 0.5, 0.15, 0.7))  # no sigmoid of the log-odds has this shape
    calibration = fit_calibration(y, p, seed=3, method="auto")
    assert calibration.method == "isotonic"
    cv = calibration.chosen_by["cv_brier"]
    assert cv["isotonic"] < cv["platt"]
    np.testing.assert_allclose(calibration.apply(np.array([0.1, 0.9])), [0.15, 0.7], atol=0.05)


def test_ece_and_reliability_curve_by_hand() -> None:
    y = np.array([0, 1, 0, 0])
    p = np.array([0.1, 0.3, 0.35, 1.0])
    # five bins of width 0.2: {0.1} gap 0.1; {0.3, 0.35} mean 0.325 vs rate 0.5; {1.0} (last bin) gap 1.0
    assert expected_calibration_error(y, p, bins=5) == pytest.approx((0.1 + 2 * 0.175 + 1.0) / 4)
    curve = reliability_curve(y, p, bins=5)
    assert list(curve.columns) == ["bin", "mean_predicted", "observed_rate", "count"]
    assert curve["bin"].tolist() == [0, 1, 4]
    assert curve["count"].tolist() == [1, 2, 1]
    np.testing.assert_allclose(curve["mean_predicted"], [0.1, 0.325, 1.0])
    np.testing.assert_allclose(curve["observed_rate"], [0.0, 0.5, 0.0])


def test_reliability_curve_counts_every_row(rng: np.random.Generator) -> None:
    y, p = platt_world(rng, n=777)
    curve = reliability_curve(y, p, bins=20)
    assert curve["count"].sum() == 777
    assert (curve["count"] > 0).all()


def test_none_returns_input_and_others_stay_inside_zero_one(rng: np.random.Generator) -> None:
    p = np.array([0.0, 0.5, 1.0])
    assert Calibration("none", {}).apply(p) is p
    steep = Calibration("platt", {"a": 50.0, "b": 0.0}).apply(p)
    assert steep.min() == EPS and steep.max() == 1 - EPS


@pytest.mark.parametrize(("y", "p", "message"), [
    ([0, 1, 2], [0.1, 0.2, 0.3], "0 or 1"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "finite"),
    ([0, 1, 1], [0.1, 0.2, 1.3], r"within \[0, 1\]"),
    ([0, 1], [0.1, 0.2, 0.3], "same length"),
    ([], [], "empty"),
])
def test_bad_inputs_raise_value_error(y: list[float], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_calibration(np.array(y), np.array(p), method="platt", seed=0)
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(np.array(y), np.array(p), bins=BINS)


def test_unknown_methods_are_refused() -> None:
    with pytest.raises(ModelError, match="magic"):
        Calibration.from_dict({"method": "magic", "params": {}})
    with pytest.raises(ValueError, match="magic"):
        fit_calibration(np.array([0, 1]), np.array([0.2, 0.8]), method="magic", seed=0)


@pytest.mark.parametrize("entry", [
    {"method": "platt", "params": {"a": 1.0}},
    {"method": "platt", "params": {"a": 1.0, "b": "x"}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.9, 0.1]}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.1]}},
    {"params": {}},
])
def test_damaged_entries_raise_model_error(entry: dict) -> None:
    with pytest.raises(ModelError):
        Calibration.from_dict(entry)


@pytest.mark.parametrize(("n_won", "expected"), [(6, "platt"), (1, "none"), (0, "none")])
def test_too_few_of_a_class_falls_back_with_a_reason(rng: np.random.Generator, n_won: int, expected: str) -> None:
    y = np.array([1] * n_won + [0] * (200 - n_won))
    p = np.clip(rng.uniform(0, 0.3, 200) + 0.4 * y, 0, 1)
    calibration = fit_calibration(y, p, folds=5, method="auto", seed=0)
    assert calibration.method == expected
    assert "too few to cross-validate" in calibration.chosen_by["reason"]
    assert "cv_brier" not in calibration.chosen_by
    assert np.isfinite(calibration.apply(p)).all()
