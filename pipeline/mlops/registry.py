"""The MLflow model registry: which registered version is the champion that scoring uses.

Every trained model is registered (``registry.model_name``) by the train stage. The
evaluate stage moves the ``champion`` alias to it only if it passes the gates; the version that
held the alias before keeps the ``previous_champion`` alias, so ``leadscore rollback`` is one
command. Scoring reads the champion's own ``model.txt`` and ``model_meta.json`` (LightGBM text and
JSON, logged as run artifacts), never a pickled flavour.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import ModelError
from pipeline.mlops.tracking import ARTIFACT_DIR, MODEL_TAG, Store

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous_champion"


@dataclass(frozen=True)
class Version:
    """A registered model version, with what identifies its model files."""

    version: str
    run_id: str
    model_sha256: str | None

    def as_dict(self) -> dict[str, Any]:
        """What identifies the version in a report: its number and its model's bytes (the run id is random,
        so a report that holds it differs on every fresh run)."""
        return {"version": self.version, "model_sha256": self.model_sha256}


def _version(client: Any, mv: Any) -> Version:
    sha = None
    if mv.run_id:
        sha = client.get_run(mv.run_id).data.tags.get(MODEL_TAG)
    return Version(version=str(mv.version), run_id=str(mv.run_id), model_sha256=sha)


def aliased(store: Store, alias: str = CHAMPION) -> Version | None:
    """The version holding ``alias``, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    try:
        mv = client.get_model_version_by_alias(store.model_name, alias)
    except MlflowException:
        return None
    return _version(client, mv)


def numbered(store: Store, version: str) -> Version:
    """Registered version ``version`` (a number, or an alias such as champion); a clear error if none."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    name = store.model_name
    try:
        mv = client.get_model_version(name, version) if version.isdigit() else \
            client.get_model_version_by_alias(name, version)
    except MlflowException as exc:
        raise ModelError(f"registered model {name!r} has no version or alias {version!r} "
                         f"(at {store.uri})") from exc
    return _version(client, mv)


def version_of(store: Store, model_sha256: str) -> Version | None:
    """The registered version of the model with these bytes (the newest, if registered twice)."""
    client = store.client()
    name = store.model_name
    found = [mv for mv in client.search_model_versions(f"name = '{name}'")
             if mv.run_id and client.get_run(mv.run_id).data.tags.get(MODEL_TAG) == model_sha256]
    if not found:
        return None
    return _version(client, max(found, key=lambda mv: int(mv.version)))


def promote(store: Store, challenger: Version) -> Version | None:
    """Give ``challenger`` the champion alias; the old champion (returned) keeps ``previous_champion``."""
    client = store.client()
    name = store.model_name
    old = aliased(store, CHAMPION)
    if old is not None and old.version != challenger.version:
        client.set_registered_model_alias(name, PREVIOUS, old.version)
    client.set_registered_model_alias(name, CHAMPION, challenger.version)
    log.info("registry: %s version %s is now the %s%s", name, challenger.version, CHAMPION,
             f" (version {old.version} is kept as {PREVIOUS})" if old and old.version != challenger.version else "")
    return old


def rollback(store: Store, to_version: str | None = None) -> tuple[Version, Version]:
    """Move the champion alias back to ``to_version`` (default: the previous champion).
    Returns (new champion, the one it replaced); the replaced one becomes ``previous_champion``."""
    client = store.client()
    name = store.model_name
    current = aliased(store, CHAMPION)
    if current is None:
        raise ModelError(f"registered model {name!r} has no {CHAMPION} yet: nothing to roll back")
    if to_version is None:
        target = aliased(store, PREVIOUS)
        if target is None:
            raise ModelError(f"{name!r} has no {PREVIOUS}: only one model was ever promoted. "
                             "Name a version with --to (see the registry in `make mlflow-ui`)")
    else:
        target = numbered(store, to_version)
    if target.version == current.version:
        raise ModelError(f"version {target.version} is already the {CHAMPION}")
    client.set_registered_model_alias(name, CHAMPION, target.version)
    client.set_registered_model_alias(name, PREVIOUS, current.version)
    return target, current


def download(store: Store, version: Version, dest: Path) -> Path:
    """The version's model.txt and model_meta.json, fetched into ``dest``; returns ``dest``."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # two small files: no bars in logs
    folder = dest
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, MODEL_META_FILE):
        try:
            mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=f"{ARTIFACT_DIR}/{name}",
                                                dst_path=str(folder), tracking_uri=store.uri)
        except Exception as exc:  # the artifact store is outside our control: name what is missing
            raise ModelError(f"cannot fetch {name} of registered version {version.version} (run {version.run_id}) "
                             f"from {store.uri}: {exc}") from exc
    return folder
