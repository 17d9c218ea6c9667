"""The model as files and its input matrix: saved category levels, unseen values, tampered files refused."""

from pathlib import Path

import pandas as pd
import pytest

from pipeline.contracts.features import FeatureSpec
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import ModelError
from pipeline.modeling.model import load_model, prepare_matrix
from pipeline.modeling.train import save_model
from tests.conftest import PARAMS_SHA256

SPECS = [FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
         FeatureSpec("employees", "numeric", "firmographic", "employees", "Employees")]


def test_unseen_and_missing_categories_become_missing_not_errors() -> None:
    frame = pd.DataFrame({"industry": ["software", "aerospace", None], "employees": ["12", 40, None]})
    x = prepare_matrix(frame, specs=SPECS, levels={"industry": ["retail", "software"]})
    assert list(x["industry"].cat.categories) == ["retail", "software"]
    assert x["industry"].isna().tolist() == [False, True, True]
    assert x["employees"].tolist()[:2] == [12.0, 40.0]


def test_missing_feature_column_is_named() -> None:
    with pytest.raises(ModelError, match="employees"):
        prepare_matrix(pd.DataFrame({"industry": ["x"]}), specs=SPECS, levels={"industry": []})


def test_load_model_refuses_a_tampered_model_file(small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    assert load_model(tmp_path).version.startswith("lgbm-")
    with (tmp_path / MODEL_FILE).open("a") as fh:
        fh.write("\n")
    with pytest.raises(ModelError, match="does not match"):
        load_model(tmp_path)
    (tmp_path / MODEL_META_FILE).unlink()
    with pytest.raises(ModelError, match="run `leadscore train` first"):
        load_model(tmp_path)
