"""Training: byte-identical models for the same data and params, the data-sufficiency gate, seeded tuning."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.modeling.train as training
from pipeline.contracts.features import FeatureSet
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import DataError
from pipeline.modeling.model import prepare_matrix
from pipeline.modeling.train import data_fingerprint, predict_rows, save_model
from tests.conftest import PARAMS_SHA256, train_on


def test_same_data_and_params_give_byte_identical_models(small, small_model, tmp_path: Path) -> None:
    first = save_model(small_model, tmp_path / "a", params_sha256=PARAMS_SHA256)
    again = train_on(small)
    second = save_model(again, tmp_path / "b", params_sha256=PARAMS_SHA256)
    for name in (MODEL_FILE, MODEL_META_FILE):  # the metadata too: no clock, no commit in it
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first == second


def test_too_few_outcomes_in_a_slice_is_a_clear_error(small) -> None:
    matrix = small.features.matrix.copy()
    newest = matrix["label"].notna() & (matrix["as_of"] >= matrix.loc[matrix["label"].notna(), "as_of"].quantile(0.8))
    matrix.loc[newest, "label"] = 0.0
    with pytest.raises(DataError, match=r"the test slice has 0 won and \d+ lost deals \(needs at least 20 won"):
        train_on(small, features=FeatureSet(matrix, small.features.specs), seed=1)


def test_optuna_tuning_is_seeded_starts_from_the_given_params_and_uses_validation_only(small) -> None:
    first = train_on(small, seed=3, tuning_trials=4)
    again = train_on(small, seed=3, tuning_trials=4)
    tuning = first.description["tuning"]
    assert tuning["trials"] == 4 and tuning == again.description["tuning"]  # same trials, same choice
    assert first.booster.model_to_string() == again.booster.model_to_string()
    assert tuning["best_valid_auc"] >= tuning["given_params_valid_auc"]  # trial 0 is params.yaml's own
    assert first.description["lightgbm_params"]["num_leaves"] == tuning["best_params"]["num_leaves"]
    assert first.description["valid_auc"] == pytest.approx(tuning["best_valid_auc"], abs=1e-6)


def test_the_training_rows_fingerprint_is_pandas_hash_of_the_rows_built_column_by_column() -> None:
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({
        "record_id": [f"L{i:05d}" for i in range(n)],
        "as_of": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "amount": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "events": rng.integers(0, 9, n),
        "region": pd.Categorical(rng.choice(np.array(["north", "south", None], dtype=object), n)),
        "title": pd.Series(rng.choice(np.array(["CFO", "VP Sales", None], dtype=object), n), dtype="str"),
        "label": rng.integers(0, 2, n).astype(float),
    })
    rows = np.sort(rng.choice(n, 300, replace=False))

    def whole(f: pd.DataFrame) -> str:  # the fingerprint as pandas computes it over a frame
        hashed = pd.util.hash_pandas_object(f, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes() + ",".join(map(str, f.columns)).encode()).hexdigest()

    assert data_fingerprint(frame) == whole(frame)
    assert data_fingerprint(frame, rows) == whole(frame.iloc[rows]) == data_fingerprint(frame.iloc[rows])
    assert data_fingerprint(frame, rows[1:]) != data_fingerprint(frame, rows)


def test_predictions_a_slice_of_rows_at_a_time_are_those_of_one_predict(small, small_model, monkeypatch) -> None:
    x = prepare_matrix(small.features.matrix, specs=small.features.specs,
                       levels=small_model.description["category_levels"])
    whole = small_model.booster.predict(x, num_iteration=small_model.best_iteration)
    monkeypatch.setattr(training, "PREDICT_ROWS", 97)  # many slices, the last one short
    np.testing.assert_array_equal(predict_rows(small_model.booster, x, num_iteration=small_model.best_iteration),
                                  whole)
    assert len(x) > 3 * 97 and len(x) % 97


def test_a_backtest_model_is_the_same_model_without_the_training_profile(small, small_model) -> None:
    settings = small.settings
    lean = training.train(small.features, params=settings.train, split=settings.split,
                          sufficiency=settings.sufficiency, seed=settings.seed, drift_bins=settings.drift.bins,
                          describe=False)
    assert lean.booster.model_to_string() == small_model.booster.model_to_string()
    assert lean.description["calibration"] == small_model.description["calibration"]
    assert not {"typical_won", "drift_reference", "train_data_sha256"} & set(lean.description)
    assert {"typical_won", "drift_reference", "train_data_sha256"} <= set(small_model.description)
