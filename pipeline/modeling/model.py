"""The trained model as files: LightGBM text plus JSON metadata (pipeline.contracts.model). No pickle anywhere.

Train, evaluate and score all go through :func:`prepare_matrix`, so categorical columns get the
levels saved at training time (an unseen value becomes missing, never a crash) and numeric
columns are floats, whatever the input's dtypes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.contracts.features import FeatureSet, FeatureSpec
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.contracts.model import ModelMeta, read_model_meta
from pipeline.errors import ModelError
from pipeline.modeling.calibration import Calibration


def category_levels(frame: pd.DataFrame, specs: list[FeatureSpec]) -> dict[str, list[str]]:
    """Sorted levels of each categorical feature, as seen in ``frame`` (the training rows)."""
    return {
        s.name: sorted(str(v) for v in frame[s.name].dropna().unique())
        for s in specs if s.kind == "categorical"
    }


def prepare_matrix(frame: pd.DataFrame, *, specs: list[FeatureSpec], levels: dict[str, list[str]]) -> pd.DataFrame:
    """The model's input: features in spec order, categoricals cast to the saved levels."""
    missing = [s.name for s in specs if s.name not in frame.columns]
    if missing:
        raise ModelError(f"the feature matrix lacks column(s) the model needs: {', '.join(missing)}")
    out = {}
    for s in specs:
        col = frame[s.name]
        if s.kind == "categorical":
            text = col.astype("object").where(col.notna(), None)
            out[s.name] = pd.Categorical(text, categories=levels[s.name])
        else:
            out[s.name] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class LoadedModel:
    """A booster and its metadata; ``registry_version`` when it came from the MLflow registry."""

    booster: lgb.Booster
    meta: ModelMeta
    text: bytes = b""  # model.txt as loaded: what is shipped to Dask workers
    registry_version: str | None = None

    @property
    def specs(self) -> list[FeatureSpec]:
        return self.meta.features

    @property
    def levels(self) -> dict[str, list[str]]:
        return self.meta.category_levels

    @property
    def version(self) -> str:
        return self.meta.model_version

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return prepare_matrix(frame, specs=self.specs, levels=self.levels)

    @cached_property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.meta.calibration.model_dump())

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """LightGBM's own probabilities (what its SHAP values explain, in log-odds)."""
        return np.asarray(self.booster.predict(self.matrix(frame)), dtype=float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of winning: the raw ones through the calibration fitted at training."""
        return self.calibration.apply(self.raw_proba(frame))


def model_version(model_sha256: str) -> str:
    """A short, content-derived model version: the same model bytes give the same version."""
    return f"lgbm-{model_sha256[:12]}"


def load_model(models_dir: Path) -> LoadedModel:
    """Load ``model.txt`` and ``model_meta.json``, refusing a model whose bytes don't match the metadata."""
    model_path, meta_path = models_dir / MODEL_FILE, models_dir / MODEL_META_FILE
    for path in (model_path, meta_path):
        if not path.exists():
            raise ModelError(f"missing {path}; run `leadscore train` first")
    return model_from_bytes(model_path.read_bytes(), read_model_meta(meta_path), where=str(model_path))


def model_from_bytes(model_text: bytes, meta: ModelMeta, *, where: str = "the model") -> LoadedModel:
    """A model from its LightGBM text and metadata (as shipped to Dask workers), checked like
    :func:`load_model`: the bytes' sha256 must be the metadata's, and so must the feature names."""
    actual = hashlib.sha256(model_text).hexdigest()
    if meta.model_sha256 != actual:
        raise ModelError(f"{where} does not match its metadata (sha256 {actual[:12]}, metadata says "
                         f"{meta.model_sha256[:12]}); retrain or restore both files")
    booster = lgb.Booster(model_str=model_text.decode("utf-8"))
    if booster.feature_name() != [s.name for s in meta.features]:
        raise ModelError(f"{where}: its features differ from the metadata's feature spec")
    return LoadedModel(booster=booster, meta=meta, text=model_text)


def check_features_match(model: LoadedModel, features: FeatureSet) -> None:
    """Fail fast if the feature matrix was built with a different spec than the model's."""
    missing = [s.name for s in model.specs if s.name not in features.names]
    if missing:
        raise ModelError(f"the model needs feature(s) the feature matrix lacks: {', '.join(missing[:10])}; "
                         "rebuild features with the params the model was trained with")
