"""model_meta.json is a typed contract: validated on load, frozen, and free of anything that changes
from run to run; provenance.json beside it says when and from which commit, tied by sha256."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.contracts.files import MODEL_META_FILE, PROVENANCE_FILE
from pipeline.contracts.model import ModelMeta, Provenance, parse_model_meta, read_model_meta, read_provenance
from pipeline.errors import ModelError
from pipeline.io.files import read_json, write_json
from pipeline.mlops.provenance import record


@pytest.fixture
def meta_json(models_dir: Path) -> dict:
    return read_json(models_dir / MODEL_META_FILE)


def test_an_unknown_or_missing_key_names_itself(meta_json: dict) -> None:
    with pytest.raises(ModelError, match=r"calibraton: Extra inputs are not permitted"):
        parse_model_meta({**meta_json, "calibraton": {}}, where="model_meta.json")
    without = {k: v for k, v in meta_json.items() if k != "typical_won"}
    with pytest.raises(ModelError, match=r"typical_won: Field required"):
        parse_model_meta(without, where="model_meta.json")
    with pytest.raises(ModelError, match=r"split\.method"):
        parse_model_meta({**meta_json, "split": {**meta_json["split"], "method": "random"}}, where="x")


def test_the_metadata_is_frozen_after_load(models_dir: Path) -> None:
    meta = read_model_meta(models_dir / MODEL_META_FILE)
    with pytest.raises(ValidationError):
        meta.model_version = "lgbm-other"  # type: ignore[misc]


def test_it_holds_no_clock_and_no_commit(meta_json: dict) -> None:
    # Those differ on every run; the model and its metadata must not (they are DVC outputs).
    text = json.dumps(meta_json)
    assert "trained_at" not in text and "git_commit" not in text
    assert ModelMeta.model_validate(meta_json).as_json() == meta_json  # what is read is what was written


def test_metadata_written_before_it_was_typed_still_loads(meta_json: dict, tmp_path: Path) -> None:
    legacy = {k: v for k, v in meta_json.items() if k != "meta_version"}
    legacy |= {"git_commit": "abc123+dirty", "registry_version": "3"}
    write_json(tmp_path / MODEL_META_FILE, legacy)
    assert read_model_meta(tmp_path / MODEL_META_FILE) == ModelMeta.model_validate(meta_json)


def test_a_damaged_file_is_a_model_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / MODEL_META_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="cannot be read as JSON"):
        read_model_meta(tmp_path / MODEL_META_FILE)
    with pytest.raises(ModelError, match="run `leadscore train` first"):
        read_model_meta(tmp_path / "missing.json")


def test_provenance_belongs_to_one_model(tmp_path: Path) -> None:
    provenance = record("a" * 64)
    assert provenance.trained_at.endswith("Z") and provenance.leadscore_version
    path = tmp_path / PROVENANCE_FILE
    write_json(path, provenance.model_dump(mode="json"))
    assert read_provenance(path, model_sha256="a" * 64) == provenance
    # DVC may restore another run's model files from its cache: that provenance is not this model's.
    assert read_provenance(path, model_sha256="b" * 64) is None
    assert read_provenance(tmp_path / "none.json", model_sha256="a" * 64) is None
    clean = Provenance(model_sha256="a", trained_at="t", git_commit="abc", git_dirty=False, leadscore_version="0")
    assert clean.commit_text() == "abc"
    assert clean.model_copy(update={"git_dirty": True}).commit_text() == "abc+dirty"
