"""Training: byte-identical models for the same data and params, the data-sufficiency gate, seeded tuning."""

from pathlib import Path

import pytest

from pipeline.contracts.features import FeatureSet
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import DataError
from pipeline.modeling.train import save_model
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
