import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.contracts.features import FeatureSpec
from pipeline.modeling.baselines import BASELINES, baseline_scores

SPECS = [FeatureSpec("visits", "numeric", "intent", "visits", "Pricing page visits"),
         FeatureSpec("noise", "numeric", "intent", "noise", "Noise"),
         FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
         FeatureSpec("framework_points", "numeric", "qualification", "framework", "BANT criteria met")]
INDUSTRIES = ["software", "retail", "energy", "health"]


def _matrix(n: int, seed: int) -> pd.DataFrame:
    """Won odds rise with visits and with industry software; noise and framework points carry none."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, n).astype(float)
    industry = rng.choice(INDUSTRIES, n).astype(object)
    logit = 0.9 * (visits - 3) + 2.0 * (industry == "software") - 0.8
    visits[rng.random(n) < 0.1] = np.nan
    industry[rng.random(n) < 0.1] = None
    points = rng.integers(0, 5, n).astype(float)
    points[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "record_id": [f"R{seed}-{i}" for i in range(n)],
        "outcome": "closed",
        "label": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float),
        "as_of": pd.Timestamp("2024-06-30"),
        "visits": visits,
        "noise": rng.normal(size=n),
        "industry": pd.Series(industry, dtype="str"),
        "framework_points": points,
    })


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _matrix(1500, seed=1)


@pytest.fixture(scope="module")
def test_frame() -> pd.DataFrame:
    return _matrix(800, seed=2)


def test_models_find_the_signal_and_base_rate_is_the_training_won_rate(train, test_frame) -> None:
    scores = baseline_scores(train, test_frame, SPECS, seed=0)
    assert tuple(scores) == BASELINES
    y = test_frame["label"].to_numpy()
    assert roc_auc_score(y, scores["logistic_regression"]) > 0.75
    assert roc_auc_score(y, scores["naive_bayes"]) > 0.75
    assert np.all(scores["base_rate"] == train["label"].mean())
    assert roc_auc_score(y, scores["base_rate"]) == 0.5
    for name in ("logistic_regression", "naive_bayes"):
        assert ((scores[name] > 0) & (scores[name] < 1)).all()


def test_framework_points_is_the_training_win_rate_per_points_and_absent_without_its_spec(train, test_frame) -> None:
    scores = baseline_scores(train, test_frame, SPECS, seed=0)
    points = test_frame["framework_points"].to_numpy()
    assert np.isnan(points).any()
    train_points = train["framework_points"].fillna(0).to_numpy()
    y, prior = train["label"].to_numpy(), train["label"].mean()
    for value in np.unique(np.where(np.isnan(points), 0, points)):  # missing counts as 0 criteria met
        same = train_points == value
        expected = (y[same].sum() + prior) / (same.sum() + 1)  # one pseudo-deal at the overall rate
        rows = np.where(np.isnan(points), 0, points) == value
        np.testing.assert_allclose(scores["framework_points"][rows], expected, rtol=1e-12)
    without = baseline_scores(train, test_frame, SPECS[:3], seed=0)
    assert "framework_points" not in without
    assert tuple(without) == ("base_rate", "logistic_regression", "naive_bayes")


def test_naive_bayes_matches_the_smoothed_posterior_by_hand() -> None:
    # industry: a (won 2, lost 1), b (won 1, lost 2), missing (lost 1): k = 3 values seen.
    # region holds one value in training, so it is skipped, even where test holds another.
    train = pd.DataFrame({
        "label": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "industry": pd.Series(["a", "a", "a", "b", "b", "b", None], dtype="str"),
        "region": pd.Series(["x"] * 7, dtype="str"),
    })
    test = pd.DataFrame({"label": np.nan,
                         "industry": pd.Series(["a", "b", None, "z"], dtype="str"),
                         "region": pd.Series(["x", "y", "x", None], dtype="str")})
    specs = [FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
             FeatureSpec("region", "categorical", "firmographic", "region", "Region")]
    n_won, n_lost, k, alpha = 3, 4, 3, 1.0

    def posterior(won: int, lost: int) -> float:
        p_won = n_won / 7 * (won + alpha) / (n_won + alpha * (k + 1))
        p_lost = n_lost / 7 * (lost + alpha) / (n_lost + alpha * (k + 1))
        return p_won / (p_won + p_lost)

    expected = [posterior(2, 1), posterior(1, 2), posterior(0, 1), posterior(0, 0)]  # "z" unseen: zero counts
    got = baseline_scores(train, test, specs, seed=0)["naive_bayes"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got[3] == pytest.approx((3 / 7 * 1 / 7) / (3 / 7 * 1 / 7 + 4 / 7 * 1 / 8), abs=1e-12)


def test_unseen_levels_and_empty_columns_score_every_row_in_test_order(train, test_frame) -> None:
    odd = test_frame.iloc[:50].copy()
    odd["industry"] = pd.Series(["aerospace"] * 25 + [None] * 25, dtype="str", index=odd.index)
    odd["visits"] = np.nan
    odd.index = np.arange(1000, 1050)[::-1]
    scores = baseline_scores(train, odd, SPECS, seed=0)
    assert all(len(s) == len(odd) for s in scores.values())
    assert all(np.isfinite(s).all() for s in scores.values())
    order = np.random.default_rng(0).permutation(len(odd))
    shuffled = baseline_scores(train, odd.iloc[order], SPECS, seed=0)
    for name in scores:
        np.testing.assert_allclose(shuffled[name], scores[name][order], rtol=0, atol=1e-9)


def test_numeric_features_alone_are_enough(train, test_frame) -> None:
    scores = baseline_scores(train, test_frame, SPECS[:2], seed=0)
    y = test_frame["label"].to_numpy()
    assert roc_auc_score(y, scores["logistic_regression"]) > 0.75
    assert roc_auc_score(y, scores["naive_bayes"]) > 0.75


def test_categorical_features_alone_are_enough(train, test_frame) -> None:
    scores = baseline_scores(train, test_frame, SPECS[2:3], seed=0)
    software = (test_frame["industry"] == "software").to_numpy()
    for name in ("logistic_regression", "naive_bayes"):
        assert scores[name][software].min() > scores[name][~software].max()


def test_same_inputs_give_identical_scores(train, test_frame) -> None:
    first = baseline_scores(train, test_frame, SPECS, seed=7)
    second = baseline_scores(train.copy(), test_frame.copy(), SPECS, seed=7)
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name])


def test_open_training_rows_are_ignored(train, test_frame) -> None:
    open_rows = _matrix(300, seed=3).assign(label=np.nan, outcome="open")
    with_open = baseline_scores(pd.concat([train, open_rows], ignore_index=True), test_frame, SPECS, seed=0)
    plain = baseline_scores(train, test_frame, SPECS, seed=0)
    for name in plain:
        np.testing.assert_allclose(with_open[name], plain[name], rtol=0, atol=1e-9)


def test_one_class_training_data_is_refused(train, test_frame) -> None:
    lost_only = train[train["label"] == 0.0]
    with pytest.raises(ValueError, match=r"won and lost records.*only lost"):
        baseline_scores(lost_only, test_frame, SPECS, seed=0)


def test_pandas_str_text_with_nan_scores_like_object_text_with_none(train, test_frame) -> None:
    assert train["industry"].dtype == "str"
    assert train["industry"].isna().any()
    as_object = {name: frame.assign(industry=frame["industry"].astype(object).where(frame["industry"].notna(), None))
                 for name, frame in (("train", train), ("test", test_frame))}
    assert as_object["train"]["industry"].dtype == object
    from_str = baseline_scores(train, test_frame, SPECS, seed=0)
    from_object = baseline_scores(as_object["train"], as_object["test"], SPECS, seed=0)
    for name in from_str:
        np.testing.assert_allclose(from_object[name], from_str[name], rtol=0, atol=1e-12)


def test_past_max_rows_the_logistic_baseline_fits_a_seeded_sample_and_the_counts_use_every_row(
        train, test_frame) -> None:
    whole = baseline_scores(train, test_frame, SPECS, seed=5)
    capped = baseline_scores(train, test_frame, SPECS, seed=5, max_rows=600)
    rows = np.sort(np.random.default_rng(5).choice(len(train), 600, replace=False))
    sample = baseline_scores(train.iloc[rows], test_frame, SPECS, seed=5)
    np.testing.assert_array_equal(capped["logistic_regression"], sample["logistic_regression"])
    assert not np.array_equal(capped["logistic_regression"], whole["logistic_regression"])
    for name in ("base_rate", "framework_points", "naive_bayes"):  # counts over every training row
        np.testing.assert_array_equal(capped[name], whole[name])
    y = test_frame["label"].to_numpy()
    assert roc_auc_score(y, capped["logistic_regression"]) > 0.75  # a sample still finds the signal
    np.testing.assert_array_equal(baseline_scores(train, test_frame, SPECS, seed=5, max_rows=len(train))
                                  ["logistic_regression"], whole["logistic_regression"])
