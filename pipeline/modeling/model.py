"""The trained model as files: LightGBM text plus JSON metadata (pipeline.contracts.model). No pickle anywhere.

Train, evaluate and score all go through :func:`prepare_matrix`, so categorical columns get the
levels saved at training time (an unseen value becomes missing, never a crash) and numeric
columns are floats, whatever the input's dtypes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.contracts.features import FeatureSet, FeatureSpec
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.contracts.model import ModelMeta, bundle_sha256, parse_model_meta
from pipeline.errors import ModelError
from pipeline.io.files import read_json
from pipeline.modeling.calibration import Calibration

# Per tree of a LightGBM text model: the arrays with one entry per split and one per leaf.
SPLIT_ARRAYS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child",
                "internal_value", "internal_weight", "internal_count")
LEAF_ARRAYS = ("leaf_value", "leaf_weight", "leaf_count")


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
            if not pd.api.types.is_string_dtype(col.dtype):  # levels are text: a Parquet 1 is the level "1"
                text = text.map(str, na_action="ignore")
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
    bundle_sha256: str | None = None  # of model.txt and model_meta.json as read (None when shipped as objects)

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
    text, meta_text = model_path.read_bytes(), meta_path.read_bytes()
    try:
        raw = read_json(meta_path)
    except ValueError as exc:
        raise ModelError(f"{meta_path} cannot be read as JSON: {exc}") from None
    model = model_from_bytes(text, parse_model_meta(raw, where=str(meta_path)), where=str(model_path))
    return dataclasses.replace(model, bundle_sha256=bundle_sha256(text, meta_text))


def model_from_bytes(model_text: bytes, meta: ModelMeta, *, where: str = "the model") -> LoadedModel:
    """A model from its LightGBM text and metadata (as shipped to Dask workers), checked like
    :func:`load_model`: the bytes' sha256 must be the metadata's, and so must the feature names."""
    actual = hashlib.sha256(model_text).hexdigest()
    if meta.model_sha256 != actual:
        raise ModelError(f"{where} does not match its metadata (sha256 {actual[:12]}, metadata says "
                         f"{meta.model_sha256[:12]}); retrain or restore both files")
    if meta.model_version != model_version(actual):
        raise ModelError(f"{where}: its metadata names version {meta.model_version}, but its bytes are "
                         f"{model_version(actual)}; retrain or restore both files")
    try:
        text = model_text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{where} is not a LightGBM text model (not UTF-8: {exc})") from None
    check_model_text(text, where=where)
    try:
        booster = lgb.Booster(model_str=text)
    except Exception as exc:  # LightGBMError, or the JSON of its trailing pandas_categorical line, and others
        raise ModelError(f"{where} cannot be loaded by LightGBM: {type(exc).__name__}: {exc}") from None
    if booster.feature_name() != [s.name for s in meta.features]:
        raise ModelError(f"{where}: its features differ from the metadata's feature spec")
    return LoadedModel(booster=booster, meta=meta, text=model_text)


def check_model_text(text: str, *, where: str) -> None:
    """Refuse a LightGBM text model whose layout is broken (truncated, or a tree whose arrays don't
    match its size) before LightGBM reads it: its parser aborts or crashes the process on those."""
    header, _, rest = text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    problems = [key for key in ("version", "num_class", "max_feature_idx", "feature_names", "tree_sizes")
                if key not in fields]
    if not text.startswith("tree\n") or problems:
        raise ModelError(f"{where} is not a LightGBM text model (missing {', '.join(problems) or 'its first line'})")
    try:
        sizes = [int(v) for v in fields["tree_sizes"].split()]
        max_feature = int(fields["max_feature_idx"])
    except ValueError:
        raise ModelError(f"{where}: its header's tree_sizes or max_feature_idx are not numbers") from None
    body, marker, _ = ("Tree=" + rest).partition("end of trees")
    if not marker or sum(sizes) != len(body.encode("utf-8")) or body.count("Tree=") != len(sizes):
        raise ModelError(f"{where} is truncated or damaged: its header announces {len(sizes)} trees "
                         f"({sum(sizes)} bytes), the file holds {body.count('Tree=')} ({len(body)} bytes)")
    for number, block in enumerate(body.split("Tree=")[1:]):
        tree = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        try:
            leaves = int(tree["num_leaves"])
            arrays = {key: tree.get(key, "").split() for key in (*SPLIT_ARRAYS, *LEAF_ARRAYS)}
            features = [int(v) for v in arrays["split_feature"]]
            children = [int(v) for v in arrays["left_child"] + arrays["right_child"]]
        except (KeyError, ValueError):
            raise ModelError(f"{where}: tree {number} is damaged (num_leaves or a split is unreadable)") from None
        wrong = [key for key in SPLIT_ARRAYS if leaves > 1 and len(arrays[key]) != leaves - 1]
        wrong += [key for key in LEAF_ARRAYS if key in tree and len(arrays[key]) != leaves]
        if leaves < 1 or wrong or any(not 0 <= f <= max_feature for f in features) or \
                any(not -leaves <= c < leaves - 1 for c in children):
            what = ", ".join(wrong) or "a split or child out of range"
            raise ModelError(f"{where}: tree {number} is damaged ({what} for {leaves} leaves)")


def check_features_match(model: LoadedModel, features: FeatureSet) -> None:
    """Fail fast if the feature matrix was built with a different spec than the model's."""
    missing = [s.name for s in model.specs if s.name not in features.names]
    if missing:
        raise ModelError(f"the model needs feature(s) the feature matrix lacks: {', '.join(missing[:10])}; "
                         "rebuild features with the params the model was trained with")
