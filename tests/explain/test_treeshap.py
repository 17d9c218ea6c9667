"""pipeline.explain.treeshap against LightGBM's own pred_contrib: every row within 1e-6, on the cases that broke
FastTreeSHAP (NaN rows, categorical splits, unseen codes) and on every table / fallback route."""

import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from lightgbm.basic import _data_from_pandas

from pipeline.explain.shap import Explainer
from pipeline.explain.treeshap import TreeShap, model_values

TOL = 1e-6
BASE = {"objective": "binary", "verbose": -1, "num_threads": 2, "deterministic": True, "seed": 7,
        "learning_rate": 0.1}


def make_x(rng: np.random.Generator, n: int, *, n_num: int = 6, levels: tuple[int, ...] = (), nan: float = 0.0,
           unseen: bool = False) -> np.ndarray:
    """Numeric columns (some ties and exact zeros) then category codes; NaN at rate ``nan``."""
    num = np.round(rng.normal(size=(n, n_num)), 2)
    cols = [num]
    for k in levels:
        codes = rng.integers(0, k, n).astype(float)
        if unseen:
            codes[rng.random(n) < 0.05] = 99.0
        cols.append(codes[:, None])
    x = np.hstack(cols)
    x[rng.random(x.shape) < nan] = np.nan
    return x


def label(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(x)
    logit = 1.5 * v[:, 0] - v[:, 1] * v[:, 2] + np.sin(3 * v[:, 3]) + 0.8 * (np.abs(v[:, 4]) < 0.3)
    for j in range(6, x.shape[1]):  # category effects
        logit += np.cos(1.7 * v[:, j])
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


def fit(x: np.ndarray, y: np.ndarray, *, rounds: int = 30, categorical: list[int] | None = None,
        callbacks: list | None = None, **params: object) -> lgb.Booster:
    data = lgb.Dataset(x, y, categorical_feature=categorical or "auto")
    return lgb.train({**BASE, **params}, data, num_boost_round=rounds, callbacks=callbacks)


def edge_rows(x: np.ndarray, cat_cols: list[int]) -> np.ndarray:
    """Rows with NaN, +-inf, exact and near zeros (within and beyond kZeroThreshold), and odd category codes:
    unseen, negative, fractional, huge."""
    rows = np.repeat(x[:12], 4, axis=0)
    num_cols = [j for j in range(x.shape[1]) if j not in cat_cols]
    specials = [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-30, np.inf, -np.inf]
    odd_codes = [np.nan, 99.0, -1.0, -0.5, 2.7, 1e10, 3e9, 31.0, 32.0, 63.0]
    for i in range(len(rows)):
        for j in num_cols:
            if (i + j) % 3 == 0:
                rows[i, j] = specials[(i * 7 + j) % len(specials)]
        for j in cat_cols:
            if (i + j) % 2 == 0:
                rows[i, j] = odd_codes[(i * 5 + j) % len(odd_codes)]
    return rows


def check(booster: lgb.Booster, x: np.ndarray, explainer: TreeShap | None = None) -> TreeShap:
    """Our contributions equal pred_contrib on every row and add up to the raw score."""
    explainer = explainer or TreeShap.from_booster(booster)
    ours = explainer.contributions(x)
    reference = np.asarray(booster.predict(x, pred_contrib=True, num_threads=2))
    assert ours.shape == reference.shape == (len(x), explainer.num_features + 1)
    assert np.abs(ours - reference).max(axis=1).max() <= TOL
    raw = booster.predict(x, raw_score=True, num_threads=2)
    assert np.abs(ours.sum(axis=1) - raw).max() <= TOL
    return explainer


def missing_types(booster: lgb.Booster) -> set[int]:
    """LightGBM's missing type (0 none, 1 zero, 2 NaN) of every numeric split."""
    types = set()
    for line in booster.model_to_string().splitlines():
        if line.startswith("decision_type="):
            types |= {(int(d) >> 2) & 3 for d in line.split("=")[1].split() if not int(d) & 1}
    return types


def repeats_a_feature_on_a_path(booster: lgb.Booster) -> bool:
    def walk(node: dict, seen: tuple) -> bool:
        if "leaf_index" in node:
            return False
        f = node["split_feature"]
        return f in seen or walk(node["left_child"], (*seen, f)) or walk(node["right_child"], (*seen, f))
    return any(walk(tree["tree_structure"], ()) for tree in booster.dump_model()["tree_info"])


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


@pytest.fixture(scope="module")
def mixed(rng: np.random.Generator) -> tuple[lgb.Booster, np.ndarray]:
    """Numeric with NaN plus categoricals of 5, 12 and 60 levels (NaN too), trained with missing values."""
    x = make_x(rng, 3000, levels=(5, 12, 60), nan=0.1)
    model = fit(x, label(rng, x), rounds=40, categorical=[6, 7, 8], num_leaves=15, min_data_per_group=5,
                cat_smooth=1.0, max_cat_threshold=32)
    return model, make_x(rng, 1500, levels=(5, 12, 60), nan=0.15, unseen=True)


def test_numeric_nan_and_categorical_rows_match_pred_contrib(mixed: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, x = mixed
    text = booster.model_to_string()
    assert "cat_threshold=" in text and 2 in missing_types(booster)  # categorical and NaN-aware splits
    assert repeats_a_feature_on_a_path(booster)
    explainer = check(booster, x)
    check(booster, edge_rows(x, [6, 7, 8]), explainer)


def test_every_table_route_and_the_polynomial_fallback_agree(mixed: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, x = mixed
    for splits, bits in [(0, 12), (1, 6), (6, 16), (4, 3), (4, 0)]:
        explainer = TreeShap.from_booster(booster, max_unit_splits=splits, max_table_bits=bits)
        check(booster, x[:300], explainer)
    assert explainer.stats["polynomial_leaves"] == explainer.stats["leaves"]
    assert explainer.table_nbytes == 0
    squeezed = TreeShap.from_booster(booster, max_table_bytes=20_000)  # the budget cuts bits until it fits
    assert squeezed.table_nbytes <= 20_000
    assert squeezed.stats["table_bits"] < 12
    check(booster, x[:300], squeezed)


def test_model_trained_without_missing_values_sends_nan_as_zero(rng: np.random.Generator) -> None:
    x = make_x(rng, 2000)
    booster = fit(x, label(rng, x), num_leaves=15)
    assert missing_types(booster) == {0}
    check(booster, edge_rows(make_x(rng, 400, nan=0.3), []))


def test_zero_as_missing(rng: np.random.Generator) -> None:
    x = make_x(rng, 2000, nan=0.1)
    x[rng.random(x.shape) < 0.15] = 0.0
    booster = fit(x, label(rng, x), num_leaves=15, zero_as_missing=True)
    assert 1 in missing_types(booster)
    rows = make_x(rng, 500, nan=0.2)
    rows[rng.random(rows.shape) < 0.2] = 0.0
    check(booster, np.vstack([rows, edge_rows(rows, [])]))


def test_deep_model_with_a_deep_fallback(rng: np.random.Generator) -> None:
    x = make_x(rng, 4000, n_num=10, levels=(20,), nan=0.1)
    booster = fit(x, label(rng, x), rounds=20, categorical=[10], num_leaves=63, max_depth=-1, min_data_in_leaf=5,
                  min_data_per_group=5, cat_smooth=1.0)
    rows = make_x(rng, 800, n_num=10, levels=(20,), nan=0.1, unseen=True)
    explainer = check(booster, rows)
    assert explainer.stats["max_depth"] > 10
    small = TreeShap.from_booster(booster, max_table_bits=7)  # the deepest leaves go per row by polynomial
    assert 0 < small.stats["polynomial_leaves"] < small.stats["leaves"]
    check(booster, rows, small)


def test_single_leaf_tree_only_adds_to_the_base(rng: np.random.Generator) -> None:
    x = make_x(rng, 1000, nan=0.1)
    no_split_first = lgb.reset_parameter(min_gain_to_split=[1e9] + [0.0] * 9)
    booster = fit(x, label(rng, x), rounds=10, num_leaves=7, callbacks=[no_split_first])
    assert [t["num_leaves"] for t in booster.dump_model()["tree_info"]][:2] == [1, 7]
    check(booster, make_x(rng, 300, nan=0.1))
    constant = fit(x, label(rng, x), rounds=1, min_gain_to_split=1e9)  # a model that is one constant tree
    explainer = check(constant, x[:50])
    assert np.all(explainer.contributions(x[:50])[:, :-1] == 0.0)


def test_threads_and_batch_sizes_give_the_same_values(mixed: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, x = mixed
    explainer = TreeShap.from_booster(booster)
    one = explainer.contributions(x, num_threads=1)
    two = explainer.contributions(x, num_threads=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(explainer.contributions(x[7:8]), one[7:8])
    assert explainer.contributions(x[:0]).shape == (0, explainer.num_features + 1)
    with pytest.raises(ValueError, match="columns"):
        explainer.contributions(x[:, :5])


def test_model_values_match_what_lightgbm_predicts_on() -> None:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({
        "size": rng.normal(size=n),
        "visits": rng.integers(0, 30, n),
        "ratio": rng.normal(size=n).astype(np.float32),
        "flag": rng.random(n) < 0.5,
        "industry": pd.Categorical(rng.choice(np.array(["retail", "saas", "bank", None], dtype=object), n)),
        "region": pd.Categorical(rng.choice(list("abcdefghij"), n)),
    })
    frame.loc[rng.random(n) < 0.1, "size"] = np.nan
    y = ((frame["size"].fillna(0) + (frame["industry"] == "saas") + 0.3 * frame["visits"] / 10) > 0.8).astype(int)
    booster = lgb.train({**BASE, "num_leaves": 7, "min_data_per_group": 5, "cat_smooth": 1.0},
                        lgb.Dataset(frame, y), num_boost_round=20)

    # new rows: categories in another order, an unseen level and missing values
    new = frame.sample(200, random_state=1).reset_index(drop=True)
    new["industry"] = pd.Categorical(new["industry"].astype(object).where(new.index % 9 != 0, "mining"),
                                     categories=["saas", "mining", "retail", "bank"])
    new["region"] = new["region"].cat.set_categories(list("jihgfedcba"))
    values = model_values(new, categories=booster.pandas_categorical)
    expected = _data_from_pandas(new, "auto", "auto", booster.pandas_categorical)[0]
    np.testing.assert_array_equal(values, expected.astype(np.float64))
    assert np.isnan(values[::9, 4]).all()  # the unseen level is missing to the model
    np.testing.assert_array_equal(model_values(frame), _data_from_pandas(frame, "auto", "auto", None)[0])

    reference = booster.predict(new, pred_contrib=True)
    for route in ("kernel", "auto", "pred_contrib"):
        got = Explainer(booster, route=route).values(new)
        assert np.abs(got - reference).max() <= TOL
    with pytest.raises(ValueError, match="category columns"):
        model_values(new.drop(columns="region"), categories=booster.pandas_categorical)
    with pytest.raises(ValueError, match="route"):
        Explainer(booster, route="fast")  # type: ignore[arg-type]


def test_an_explainer_keeps_its_tables_and_auto_picks_by_batch_size(
        mixed: tuple[lgb.Booster, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    booster, x = mixed
    reference = np.asarray(booster.predict(x, pred_contrib=True))
    assert np.abs(Explainer(booster, route="kernel").values(x) - reference).max() <= TOL

    calls: list[int] = []

    def counted(self: TreeShap, values: np.ndarray, **kwargs: object) -> np.ndarray:
        calls.append(len(values))
        return reference[:len(values)]

    monkeypatch.setattr(TreeShap, "contributions", counted)
    auto = Explainer(booster, route="auto")
    auto.values(x[:2])  # too few rows to pay for building the tables: LightGBM's pred_contrib
    auto.values(x)  # enough: the tables are built, and kept
    auto.values(x[:2])  # built already: the kernel wins from one row
    assert calls == [len(x), 2]


def test_unsupported_models_are_refused(rng: np.random.Generator) -> None:
    x = make_x(rng, 600)
    multiclass = lgb.train({**BASE, "objective": "multiclass", "num_class": 3}, lgb.Dataset(x, rng.integers(0, 3, 600)),
                           num_boost_round=2)
    with pytest.raises(ValueError, match="one tree per iteration"):
        TreeShap.from_booster(multiclass)
    linear = fit(x, label(rng, x), rounds=2, linear_tree=True)
    with pytest.raises(ValueError, match="linear"):
        TreeShap.from_booster(linear)
    counts_dropped = re.sub(r"\nleaf_count=[^\n]*", "", fit(x, label(rng, x), rounds=2).model_to_string())
    with pytest.raises(ValueError, match="counts"):
        TreeShap.from_model_string(counts_dropped)
