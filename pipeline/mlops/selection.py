"""Which model scores: the registry's champion, a version or alias asked for, or a model folder.

It fails closed. A registry that cannot be reached or is damaged stops scoring (RegistryError,
exit 5) rather than scoring with whatever model is on disk; ``--model <folder>`` is the explicit
way to score with local files. The champion's files are used only if they are the bytes its
training run recorded (model.txt and model_meta.json together): local files that differ (a
retrained model, an edited calibration) are not the champion, and the registry's copy is fetched.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from pipeline.contracts.files import MODEL_META_FILE
from pipeline.errors import ModelError
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
    ("file"; the registry is not asked). A registry version number or alias: that version ("registry")."""
    if which is not None and Path(which).is_dir():
        return load_model(Path(which)), FILE
    if which is not None:
        return _registered(store, registry.numbered(store, which), models_dir=models_dir), REGISTRY
    champion = registry.aliased(store)
    if champion is None:
        model = load_model(models_dir)
        log.warning("no model of %s has passed the gates yet (see the evaluate stage's promotion report): scoring "
                    "with the unpromoted model %s; every row is marked model_status=unpromoted", store.model_name,
                    model.version)
        return model, UNPROMOTED
    return _registered(store, champion, models_dir=models_dir), CHAMPION


def _registered(store: Store, version: registry.Version, *, models_dir: Path) -> LoadedModel:
    """A registered version's model: the local files if they are its bytes, else the registry's copy."""
    local = load_model(models_dir) if (models_dir / MODEL_META_FILE).exists() else None
    if local is not None and _same_bundle(local, version):
        model = local
    else:
        if local is not None and local.meta.model_sha256 == version.model_sha256:
            log.warning("%s holds version %s's model.txt with other metadata than it was registered with; "
                        "scoring with the registry's copy", models_dir, version.version)
        with tempfile.TemporaryDirectory(prefix="leadscore-model-") as tmp:
            model = load_model(registry.download(store, version, Path(tmp)))
    if model.meta.model_sha256 != version.model_sha256:
        raise ModelError(f"registered version {version.version} of {store.model_name} records model "
                         f"{str(version.model_sha256)[:12]}, its files hold {model.meta.model_sha256[:12]}")
    return dataclasses.replace(model, registry_version=version.version)


def _same_bundle(model: LoadedModel, version: registry.Version) -> bool:
    if version.bundle_sha256 is not None:
        return model.bundle_sha256 == version.bundle_sha256
    return model.meta.model_sha256 == version.model_sha256  # registered before bundles were recorded
