"""Which model scores: the registry's champion, a version or alias asked for, or a model folder."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from pipeline.contracts.files import MODEL_META_FILE
from pipeline.mlops import registry
from pipeline.mlops.tracking import Store
from pipeline.modeling.model import LoadedModel, load_model

log = logging.getLogger(__name__)

# model_status of the scores: how the scoring model was chosen
CHAMPION, UNPROMOTED, FILE, REGISTRY = "champion", "unpromoted", "file", "registry"


def scoring_model(store: Store, *, models_dir: Path, which: str | None = None) -> tuple[LoadedModel, str]:
    """The model to score with, and its status for the model_status column.

    ``which`` None: the champion ("champion"), or with no champion yet the trained model in
    ``models_dir`` ("unpromoted"). A folder with model.txt and model_meta.json: that model
    ("file"). A registry version number or alias: that version ("registry")."""
    if which is not None:
        if Path(which).is_dir():
            return load_model(Path(which)), FILE
        return _registered(store, registry.numbered(store, which), models_dir=models_dir), REGISTRY
    champion = registry.aliased(store)
    if champion is None:
        model = load_model(models_dir)
        log.warning("no model has passed the gates yet (see the evaluate stage's promotion report): scoring with "
                    "the unpromoted model %s; every row is marked model_status=unpromoted", model.version)
        return model, UNPROMOTED
    return _registered(store, champion, models_dir=models_dir), CHAMPION


def _registered(store: Store, version: registry.Version, *, models_dir: Path) -> LoadedModel:
    """A registered version's model: the local files if they are its bytes, else downloaded."""
    local = load_model(models_dir) if (models_dir / MODEL_META_FILE).exists() else None
    if local is not None and local.meta.model_sha256 == version.model_sha256:
        model = local
    else:
        with tempfile.TemporaryDirectory(prefix="leadscore-model-") as tmp:
            model = load_model(registry.download(store, version, Path(tmp)))
    return dataclasses.replace(model, registry_version=version.version)
