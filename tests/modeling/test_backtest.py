"""The rolling-origin backtest: windows of the holdout's size, each tested on a model trained on
what was decided before it; the last window is the holdout itself."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.contracts.features import FeatureSet
from pipeline.modeling.backtest import backtest, backtest_summary, backtest_table
from pipeline.modeling.metrics import slices
from pipeline.modeling.model import load_model


def _backtest(prepared, windows: int = 4, features: FeatureSet | None = None):
    s = prepared.settings
    return backtest(features or prepared.features, windows=windows, params=s.train, split=s.split,
                    sufficiency=s.sufficiency, seed=s.seed, calibration_bins=s.evaluate.calibration_bins)


def test_windows_follow_each_other_and_the_last_is_the_holdout(small, models_dir) -> None:
    found = _backtest(small)
    assert [w.window for w in found] == [1, 2, 3, 4]
    assert len({w.test_deals for w in found}) == 1
    assert all(a.test_to <= b.test_from for a, b in itertools.pairwise(found))
    assert [w.train_deals for w in found] == sorted(w.train_deals for w in found)
    assert all(w.skipped is None and 0.5 < w.roc_auc < 1 and w.lift_top_10pct > 1 for w in found)
    # Window 4 trains on exactly what the train stage trains on, so it is the stage's model on the holdout.
    test = slices(small.features, split=small.settings.split, seed=small.settings.seed)["test"]
    model = load_model(models_dir)
    auc = roc_auc_score(test["label"].to_numpy(dtype=int), model.predict_proba(test))
    assert found[-1].test_deals == len(test) and np.isclose(found[-1].roc_auc, auc, atol=1e-6)
    table = backtest_table(found)
    assert list(table["window"]) == [1, 2, 3, 4] and table["roc_auc"].notna().all()
    assert backtest_summary(found).startswith("4 backtest windows from ")


def test_windows_that_leave_nothing_to_train_on_are_skipped_and_say_why(small) -> None:
    found = _backtest(small, windows=12)  # 6 windows of 15 % fit; the first has no deals before it
    assert len(found) == 6
    assert found[0].skipped == "no deals decided before it to train on" and found[0].roc_auc is None
    assert found[-1].skipped is None and found[-1].roc_auc is not None


def test_no_dates_or_no_windows_give_no_backtest(small) -> None:
    assert _backtest(small, windows=0) == []
    matrix = small.features.matrix.assign(as_of=pd.Timestamp("2025-01-01"))
    assert _backtest(small, features=FeatureSet(matrix, small.features.specs)) == []
    assert backtest_summary([]).startswith("no backtest")
