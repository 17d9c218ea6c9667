"""The promotion gates as a statistician would sign them: paired intervals on the same holdout, the
calibration weighed with the ranking, the champion's age, and failing closed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from pipeline.config import EvaluateParams, GatesParams
from pipeline.modeling.calibration import expected_calibration_error
from pipeline.modeling.gates import ChampionComparison, gate_decisions
from pipeline.modeling.metrics import paired_bootstrap

EVALUATE = EvaluateParams()
GATES = GatesParams()


def _paired(y: np.ndarray, p: np.ndarray, q: np.ndarray) -> dict:
    return paired_bootstrap(y, p, q, rounds=300, confidence=EVALUATE.confidence, seed=3,
                            bins=EVALUATE.calibration_bins)


def _metrics(auc: float = 0.8, baselines: dict | None = None) -> dict:
    return {"roc_auc": auc, "roc_auc_ci_low": auc - 0.02, "better_than_chance": True, "baselines": baselines or {}}


def _champion_gate(paired: dict | None, *, age: float | None = 10.0, gates: GatesParams = GATES,
                   comparable: bool = True, note: str = "") -> dict:
    comparison = ChampionComparison(paired=paired, age_days=age, comparable=comparable, note=note)
    return next(g for g in gate_decisions(_metrics(), gates=gates, champion=comparison,
                                          confidence=EVALUATE.confidence) if g["gate"] == "champion")


@pytest.fixture(scope="module")
def shifted_outcomes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes after a shift: won deals are now more common than the champion learned (it predicts
    about 0.29 on average against a real rate near 0.38: miscalibrated) but it ranks a hair better;
    the challenger, refitted on the new outcomes, is calibrated and ranks a hair worse."""
    rng = np.random.default_rng(11)
    n = 3000
    truth = expit(rng.normal(logit(0.35), 1.1, n))
    y = (rng.random(n) < truth).astype(int)
    signal = logit(truth) + rng.normal(0, 0.9, n)

    def calibrated(score: np.ndarray) -> np.ndarray:
        return LogisticRegression().fit(score[:, None], y).predict_proba(score[:, None])[:, 1]

    champion = expit(logit(calibrated(signal)) - 0.45)
    challenger = calibrated(signal + rng.normal(0, 0.3, n))
    return y, challenger, champion


def test_a_calibrated_challenger_replaces_a_miscalibrated_champion_that_ranks_a_hair_better(shifted_outcomes) -> None:
    y, challenger, champion = shifted_outcomes
    assert champion.mean() < y.mean() - 0.05  # the champion predicts the old, lower rate
    assert expected_calibration_error(y, champion, bins=10) > 3 * expected_calibration_error(y, challenger, bins=10)
    paired = _paired(y, challenger, champion)
    assert paired["roc_auc"]["delta"] < 0  # the challenger ranks (a hair) worse ...
    assert paired["brier"]["high"] < 0      # ... and is clearly better calibrated
    gate = _champion_gate(paired)
    assert gate["passed"], gate["detail"]
    assert "ROC AUC -0.0" in gate["detail"] and "paired intervals" in gate["detail"] and "Brier" in gate["detail"]
    # Turned round, the miscalibrated model does not replace the calibrated one.
    assert not _champion_gate(_paired(y, champion, challenger))["passed"]


def test_a_challenger_that_ranks_worse_beyond_the_tolerance_is_not_promoted(shifted_outcomes) -> None:
    y, _, champion = shifted_outcomes
    rng = np.random.default_rng(5)
    blurred = expit(logit(champion) + rng.normal(0, 2.0, len(y)))  # much worse ranking, no better calibrated
    gate = _champion_gate(_paired(y, blurred, champion))
    assert not gate["passed"] and "ranks worse" in gate["detail"]


def test_an_equal_challenger_waits_unless_the_champion_is_old(shifted_outcomes) -> None:
    y, _, champion = shifted_outcomes
    same = _paired(y, champion, champion)
    assert same["roc_auc"] == {"delta": 0.0, "low": 0.0, "high": 0.0}
    assert not _champion_gate(same, age=30)["passed"]  # better in nothing: the champion stays
    old = _champion_gate(same, age=GATES.max_champion_age_days + 1)
    assert old["passed"] and "older than" in old["detail"]
    assert not _champion_gate(same, age=10_000, gates=GATES.model_copy(update={"max_champion_age_days": 0}))["passed"]


def test_a_champion_that_cannot_be_compared_is_never_replaced() -> None:
    gate = _champion_gate(None, comparable=False, note="the champion (version 3) cannot be fetched, so ...")
    assert gate == {"gate": "champion", "passed": False, "detail": "the champion (version 3) cannot be fetched, so ..."}
    first = next(g for g in gate_decisions(_metrics(), gates=GATES, champion=None, confidence=0.95)
                 if g["gate"] == "champion")
    assert first["passed"] and "no champion yet" in first["detail"]


def test_the_baselines_gate_weighs_the_paired_interval_not_a_point_gap(shifted_outcomes) -> None:
    y, challenger, _champion = shifted_outcomes
    rng = np.random.default_rng(8)
    close = expit(logit(challenger) + rng.normal(0, 0.05, len(y)))  # a baseline within noise of the model
    far = expit(logit(challenger) + rng.normal(0, 2.5, len(y)))     # a baseline far behind it

    def baselines_gate(baseline: np.ndarray) -> dict:
        baselines = {"logistic_regression": {"roc_auc": 0.8, "model_minus_baseline": _paired(y, challenger, baseline)}}
        decisions = gate_decisions(_metrics(baselines=baselines), gates=GATES, champion=None, confidence=0.95)
        return next(g for g in decisions if g["gate"] == "baselines")

    assert baselines_gate(close)["passed"]  # within noise either way: not a reason to refuse the model
    assert baselines_gate(far)["passed"]
    worse = {"logistic_regression": {"roc_auc": 0.9, "model_minus_baseline": _paired(y, far, challenger)}}
    failing = next(g for g in gate_decisions(_metrics(baselines=worse), gates=GATES, champion=None, confidence=0.95)
                   if g["gate"] == "baselines")
    assert not failing["passed"] and "fails against logistic regression" in failing["detail"]
