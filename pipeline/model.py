"""The trained model as files: LightGBM text plus JSON metadata. No pickle anywhere.

Train, evaluate and score all go through :func:`prepare_matrix`, so categorical columns get the
levels saved at training time (an unseen value becomes missing, never a crash) and numeric
columns are floats, whatever the input's dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.errors import ModelError
from pipeline.features import FeatureSet
from pipeline.features.spec import FeatureSpec
from pipeline.io import read_json, sha256_file
from pipeline.schema import MODEL_FILE, MODEL_META_FILE


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


SPLIT_TIME = "time"
SPLIT_STRATIFIED = "stratified"


def split_rows(
    labeled: pd.DataFrame, *, valid_fraction: float, test_fraction: float, seed: int,
) -> tuple[pd.Series, str]:
    """'train' / 'valid' / 'test' for each labeled row, and how it was split.

    By time when the rows have decision dates: the oldest train, the newest are the test set
    (ties broken by ``record_id`` so every run splits the same way). When every as-of date is
    the same (no decision date in the export) there is no time order, so the split is random,
    stratified by outcome and seeded.
    """
    split = pd.Series("train", index=labeled.index, dtype="object")
    if labeled["as_of"].nunique() > 1:
        order = labeled.sort_values(["as_of", "record_id"], kind="stable").index
        n = len(order)
        n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
        split.loc[order[n - n_test - n_valid: n - n_test]] = "valid"
        split.loc[order[n - n_test:]] = "test"
        return split, SPLIT_TIME
    rng = np.random.default_rng(seed)
    for _, group in labeled.groupby("label", sort=True):
        index = group.sort_values("record_id", kind="stable").index.to_numpy()
        index = index[rng.permutation(len(index))]
        n_test, n_valid = round(len(index) * test_fraction), round(len(index) * valid_fraction)
        split.loc[index[:n_test]] = "test"
        split.loc[index[n_test:n_test + n_valid]] = "valid"
    return split, SPLIT_STRATIFIED


@dataclass(frozen=True)
class LoadedModel:
    """A booster, the specs of its features, the saved category levels, and its metadata."""

    booster: lgb.Booster
    specs: list[FeatureSpec]
    levels: dict[str, list[str]]
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta["model_version"])

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return prepare_matrix(frame, specs=self.specs, levels=self.levels)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(self.matrix(frame)), dtype=float)


def model_version(model_sha256: str) -> str:
    """A short, content-derived model version: the same model bytes give the same version."""
    return f"lgbm-{model_sha256[:12]}"


def load_model(models_dir: Path) -> LoadedModel:
    """Load ``model.txt`` and ``model_meta.json``, refusing a model whose bytes don't match the metadata."""
    model_path, meta_path = models_dir / MODEL_FILE, models_dir / MODEL_META_FILE
    for path in (model_path, meta_path):
        if not path.exists():
            raise ModelError(f"missing {path}; run `leadscore train` first")
    meta = read_json(meta_path)
    actual = sha256_file(model_path)
    if meta.get("model_sha256") != actual:
        raise ModelError(f"{model_path} does not match {meta_path} (sha256 {actual[:12]}, "
                         f"metadata says {str(meta.get('model_sha256'))[:12]}); retrain or restore both files")
    specs = [FeatureSpec(**s) for s in meta["features"]]
    booster = lgb.Booster(model_file=str(model_path))
    if booster.feature_name() != [s.name for s in specs]:
        raise ModelError(f"{model_path} features differ from the metadata's feature spec")
    return LoadedModel(booster=booster, specs=specs, levels=meta["category_levels"], meta=meta)


def check_features_match(model: LoadedModel, features: FeatureSet) -> None:
    """Fail fast if the feature matrix was built with a different spec than the model's."""
    model_names = [s.name for s in model.specs]
    missing = [n for n in model_names if n not in features.names]
    if missing:
        raise ModelError(f"the model needs feature(s) the feature matrix lacks: {', '.join(missing[:10])}; "
                         "rebuild features with the params the model was trained with")
