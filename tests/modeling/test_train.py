"""Training: byte-identical models for the same data and params, the data-sufficiency gate, seeded tuning."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.contracts.features import FeatureSet
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import DataError
from pipeline.modeling.train import data_fingerprint, save_model
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
