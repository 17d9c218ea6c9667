"""Simple baselines the model must beat on the same holdout: the base rate, a logistic regression,
the qualification framework's points, and a naive Bayes in the manner of Odoo CRM's predictive lead
scoring. Each is fitted on the training slice only and scores every test row (higher = more likely won).

A model that cannot beat a one-line logistic regression, or the framework's own checklist, is not
worth its complexity; these figures say so next to its own.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.contracts.features import FRAMEWORK_POINTS, FeatureSpec

log = logging.getLogger(__name__)

BASELINES = ("base_rate", "logistic_regression", FRAMEWORK_POINTS, "naive_bayes")

MISSING = "__missing__"   # missing text is a value of its own: a blank field often says something
MIN_LEVEL_COUNT = 20      # rarer training levels share one one-hot column instead of overfitting one each
NB_ALPHA = 1.0            # Laplace smoothing
NB_MAX_BINS = 10          # quantile bins per numeric field (fewer where values repeat)


def baseline_scores(train: pd.DataFrame, test: pd.DataFrame, specs: list[FeatureSpec], *,
                    seed: int, max_rows: int = 0) -> dict[str, np.ndarray]:
    """name -> probability-like score for each row of ``test`` (same order), for every baseline in
    :data:`BASELINES` that applies: ``framework_points`` only with a spec of that name, and
    ``logistic_regression`` only with at least one feature. Training rows without a label (open
    records) are ignored; only the columns named by ``specs`` are read. ``max_rows`` (0: no limit):
    the logistic regression is fitted on a seeded sample of at most that many training rows."""
    labeled = train[train["label"].notna()]
    y = labeled["label"].to_numpy(dtype=float) == 1.0
    if y.all() or not y.any():
        held = "no rows" if len(y) == 0 else f"only {'won' if y.all() else 'lost'} records ({len(y)})"
        raise ValueError(f"baselines need won and lost records in the training slice; it holds {held}")
    scores = {"base_rate": np.full(len(test), y.mean())}
    if specs:
        fitted, y_fitted = labeled, y
        if 0 < max_rows < len(labeled):
            rows = np.sort(np.random.default_rng(seed).choice(len(labeled), max_rows, replace=False))
            fitted, y_fitted = labeled.iloc[rows], y[rows]
            log.info("logistic regression baseline fitted on a seeded sample of %d of the %d training deals "
                     "(evaluate.baseline_max_rows)", max_rows, len(labeled))
        scores["logistic_regression"] = _logistic_regression(fitted, test, specs, y=y_fitted, seed=seed)
    if any(s.name == FRAMEWORK_POINTS for s in specs):
        scores[FRAMEWORK_POINTS] = _points_win_rate(labeled[FRAMEWORK_POINTS], y, test[FRAMEWORK_POINTS])
    scores["naive_bayes"] = _naive_bayes(labeled, test, specs, y=y)
    return {name: scores[name] for name in BASELINES if name in scores}


def _points_win_rate(train_points: pd.Series, y: np.ndarray, test_points: pd.Series) -> np.ndarray:
    """The training win rate of deals with the same number of criteria met (missing counts as 0),
    pulled towards the overall rate by ``NB_ALPHA`` pseudo-deals per points value: a probability,
    so Brier and log loss mean something, and the same order as the points wherever the rates rise
    with them (as they should for a qualification framework that works)."""
    points = np.rint(train_points.fillna(0).to_numpy(dtype=float)).astype(int)
    values, codes = np.unique(points, return_inverse=True)
    won = np.bincount(codes, weights=y.astype(float), minlength=len(values))
    seen = np.bincount(codes, minlength=len(values))
    rate = (won + NB_ALPHA * y.mean()) / (seen + NB_ALPHA)
    wanted = np.rint(test_points.fillna(0).to_numpy(dtype=float)).astype(int)
    at = np.clip(np.searchsorted(values, wanted), 0, len(values) - 1)
    return np.where(values[at] == wanted, rate[at], y.mean())


def _logistic_regression(train: pd.DataFrame, test: pd.DataFrame, specs: list[FeatureSpec], *,
                         y: np.ndarray, seed: int) -> np.ndarray:
    numeric = [s.name for s in specs if s.kind == "numeric"]
    categorical = [s.name for s in specs if s.kind == "categorical"]
    columns = ColumnTransformer([
        # keep_empty_features: a column empty in training imputes to 0 rather than vanishing with a warning
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                  StandardScaler()), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=MIN_LEVEL_COUNT),
         categorical),
    ])
    model = Pipeline([("columns", columns),
                      ("model", LogisticRegression(C=1.0, solver="lbfgs", max_iter=2000, random_state=seed))])
    x_train, x_test = _sklearn_inputs(train, test, numeric, categorical)
    model.fit(x_train, y)
    return model.predict_proba(x_test)[:, 1]


def _sklearn_inputs(train: pd.DataFrame, test: pd.DataFrame, numeric: list[str],
                    categorical: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric columns as floats; text as codes of its training values (missing text, as :data:`MISSING`,
    is one of them; -1 is a value training never saw). Codes, not strings: OneHotEncoder counts Python
    strings one by one (15 s at 700k rows x 15 columns) and integers in numpy; nor does it then depend
    on how a sklearn version treats pandas' ``str`` dtype holding NaN."""
    x_train = {name: _floats(train[name]) for name in numeric}
    x_test = {name: _floats(test[name]) for name in numeric}
    for name in categorical:
        x_train[name], x_test[name], _ = _level_codes(train[name].fillna(MISSING), test[name].fillna(MISSING))
    return pd.DataFrame(x_train, index=train.index), pd.DataFrame(x_test, index=test.index)


def _naive_bayes(train: pd.DataFrame, test: pd.DataFrame, specs: list[FeatureSpec], *, y: np.ndarray) -> np.ndarray:
    """Odoo-style naive Bayes: P(won) prod_f P(v_f | won) / [that + P(lost) prod_f P(v_f | lost)].

    Priors are the training shares. For a field whose training rows hold ``k`` distinct values
    (missing text, or a numeric's missing bin, counting as one) and a class with ``n_c`` rows,
    ``P(v | c) = (count_c(v) + alpha) / (n_c + alpha * (k + 1))`` with ``alpha = NB_ALPHA``; the
    ``+ 1`` keeps room for a value training never saw, which gets ``alpha / (n_c + alpha * (k + 1))``.
    Numeric fields are binned at the training quantiles (up to :data:`NB_MAX_BINS` bins). A field
    with one value in training carries no information and is skipped. Summed in log space.
    """
    n_won, n_lost = int(y.sum()), int((~y).sum())
    logit = np.full(len(test), np.log(n_won) - np.log(n_lost))
    used = 0
    for spec in specs:
        if spec.kind == "numeric":
            train_keys, test_keys = _quantile_bins(_floats(train[spec.name]), _floats(test[spec.name]))
        else:
            train_keys, test_keys = train[spec.name].fillna(MISSING), test[spec.name].fillna(MISSING)
        codes, test_codes, k = _level_codes(train_keys, test_keys)
        if k < 2:
            continue
        test_codes[test_codes < 0] = k   # the unseen value
        logit += _log_likelihood(codes[y], k, n_won)[test_codes] - _log_likelihood(codes[~y], k, n_lost)[test_codes]
        used += 1
    log.debug("naive bayes: %d of %d fields vary in training", used, len(specs))
    return expit(logit)


def _level_codes(train: pd.Series | np.ndarray, test: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes 0..k-1 of the ``k`` values seen in training, for the training and test rows (-1: unseen)."""
    codes, levels = pd.factorize(train)
    return codes, pd.Index(levels).get_indexer(test), len(levels)


def _log_likelihood(codes: np.ndarray, k: int, n: int) -> np.ndarray:
    """log P(value | class) for each of the ``k`` training values, then for an unseen one."""
    counts = np.append(np.bincount(codes, minlength=k), 0)
    return np.log(counts + NB_ALPHA) - np.log(n + NB_ALPHA * (k + 1))


def _quantile_bins(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin numbers from the training quantiles, -1 for missing; repeated quantiles merge bins."""
    observed = train[~np.isnan(train)]
    cuts = np.linspace(0, 1, NB_MAX_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(observed, cuts)) if observed.size else np.empty(0)

    def bins(values: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(values), -1, np.searchsorted(edges, values, side="right"))

    return bins(train), bins(test)


def _floats(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isinf(values), np.nan, values)   # a ratio over zero means "unknown", not "largest"
