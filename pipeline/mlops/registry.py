"""The MLflow model registry: which registered version is the champion that scoring uses.

Every trained model is registered by the train stage, under its export's registered model
(pipeline.mlops.tracking.registered_name). The evaluate stage moves the ``champion`` alias to it
only if it passes the gates; the version that held the alias before keeps ``previous_champion``, so
``leadscore rollback`` is one command. Scoring reads the champion's own ``model.txt`` and
``model_meta.json`` (LightGBM text and JSON, logged as run artifacts), never a pickled flavour, and
only if their bytes are those the training run recorded (``bundle_sha256``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.contracts.model import bundle_sha256
from pipeline.errors import ModelError
from pipeline.mlops.tracking import ARTIFACT_DIR, BUNDLE_TAG, MODEL_TAG, PROMOTED_TAG, Store

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous_champion"
EVER_CHAMPION_TAG = "was_champion"  # on a model version once it has held the champion alias


@dataclass(frozen=True)
class Version:
    """A registered model version, with what identifies its model files and what became of it."""

    version: str
    run_id: str
    model_sha256: str | None
    bundle_sha256: str | None = None   # of model.txt and model_meta.json together, as the run recorded it
    gates_passed: bool | None = None   # the evaluate stage's verdict on it, if it ran
    was_champion: bool = False
    trained_at_ms: int | None = None   # the training run's start (MLflow's clock)

    def as_dict(self) -> dict[str, Any]:
        """What identifies the version in a report: its number and its model's bytes (the run id is random,
        so a report that holds it differs on every fresh run)."""
        return {"version": self.version, "model_sha256": self.model_sha256}


def _version(client: Any, mv: Any) -> Version:
    tags: dict[str, str] = {}
    started = None
    if mv.run_id:
        run = client.get_run(mv.run_id)
        tags, started = dict(run.data.tags), run.info.start_time
    promoted = tags.get(PROMOTED_TAG)
    return Version(version=str(mv.version), run_id=str(mv.run_id), model_sha256=tags.get(MODEL_TAG),
                   bundle_sha256=tags.get(BUNDLE_TAG), gates_passed=None if promoted is None else promoted == "true",
                   was_champion=(getattr(mv, "tags", None) or {}).get(EVER_CHAMPION_TAG) == "true",
                   trained_at_ms=started)


def aliased(store: Store, alias: str = CHAMPION) -> Version | None:
    """The version holding ``alias``, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    with store.reach(f"looking up the {alias} of {store.model_name}"):
        try:
            mv = client.get_model_version_by_alias(store.model_name, alias)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return _version(client, mv)


def numbered(store: Store, version: str) -> Version:
    """Registered version ``version`` (a number, or an alias such as champion); a clear error if none."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    name = store.model_name
    with store.reach(f"looking up version {version} of {name}"):
        try:
            mv = client.get_model_version(name, version) if version.isdigit() else \
                client.get_model_version_by_alias(name, version)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise ModelError(f"registered model {name!r} has no version or alias {version!r} "
                             f"(at {store.uri})") from exc
        return _version(client, mv)


def versions(store: Store) -> list[Version]:
    """Every registered version of the store's model, oldest first."""
    client = store.client()
    with store.reach(f"listing the versions of {store.model_name}"):
        found = client.search_model_versions(f"name = '{store.model_name}'")
        return sorted((_version(client, mv) for mv in found), key=lambda v: int(v.version))


def version_of(store: Store, model_sha256: str) -> Version | None:
    """The registered version of the model with these bytes (the newest, if registered twice)."""
    found = [v for v in versions(store) if v.model_sha256 == model_sha256]
    return found[-1] if found else None


def _set_champion(store: Store, target: Version, *, previous: Version | None) -> None:
    client = store.client()
    name = store.model_name
    with store.reach(f"moving the {CHAMPION} alias of {name}"):
        if previous is not None and previous.version != target.version:
            client.set_registered_model_alias(name, PREVIOUS, previous.version)
        client.set_registered_model_alias(name, CHAMPION, target.version)
        client.set_model_version_tag(name, target.version, EVER_CHAMPION_TAG, "true")


def promote(store: Store, challenger: Version) -> Version | None:
    """Give ``challenger`` the champion alias; the old champion (returned) keeps ``previous_champion``."""
    old = aliased(store, CHAMPION)
    _set_champion(store, challenger, previous=old)
    log.info("registry: %s version %s is now the %s%s", store.model_name, challenger.version, CHAMPION,
             f" (version {old.version} is kept as {PREVIOUS})" if old and old.version != challenger.version else "")
    return old


def rollback(store: Store, to_version: str | None = None) -> tuple[Version, Version, list[str]]:
    """Move the champion alias back to ``to_version`` (default: the previous champion). Returns the new
    champion, the one it replaced (now ``previous_champion``), and warnings: a version that failed its
    gates, or that never was the champion, is moved to all the same (the user named it), and said so."""
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
    warnings = []
    if target.gates_passed is False:
        warnings.append(f"version {target.version} FAILED its gates when it was evaluated (see its MLflow run "
                        f"{target.run_id}); it scores from now on all the same, because you named it")
    elif target.gates_passed is None:
        warnings.append(f"version {target.version} was never evaluated: no gate vouches for it")
    _set_champion(store, target, previous=current)
    return target, current, warnings


def download(store: Store, version: Version, dest: Path) -> Path:
    """The version's model.txt and model_meta.json, fetched into ``dest`` and checked against the bytes
    its training run recorded; returns ``dest``."""
    import mlflow

    dest.mkdir(parents=True, exist_ok=True)
    store.client()  # checks the store, and points a moved project's artifact locations at its own mlruns/
    for name in (MODEL_FILE, MODEL_META_FILE):
        try:
            mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=f"{ARTIFACT_DIR}/{name}",
                                                dst_path=str(dest), tracking_uri=store.uri)
        except Exception as exc:  # the artifact store is outside our control: name what is missing
            raise ModelError(f"cannot fetch {name} of registered version {version.version} (run {version.run_id}) "
                             f"from {store.uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from exc
    verify(version, dest)
    return dest


def verify(version: Version, folder: Path) -> None:
    """Refuse model files that are not the bytes the version's training run recorded."""
    if version.bundle_sha256 is None:  # registered before bundles were recorded: the model file's sha only
        return
    actual = bundle_sha256((folder / MODEL_FILE).read_bytes(), (folder / MODEL_META_FILE).read_bytes())
    if actual != version.bundle_sha256:
        raise ModelError(f"the files of registered version {version.version} are not those its training run "
                         f"recorded (model.txt + model_meta.json sha256 {actual[:12]}, recorded "
                         f"{version.bundle_sha256[:12]}): the artifact store was altered. Restore it, or retrain")
