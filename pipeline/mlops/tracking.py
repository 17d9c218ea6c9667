"""MLflow tracking: one run per trained model, found again later by the model's sha256.

The store is ``MLFLOW_TRACKING_URI`` if set, else the local SQLite file ``paths.mlflow_db`` with its
artifacts in ``mlruns/`` beside it. Nothing here runs at import time.

A store that cannot be used fails fast with :class:`RegistryError` (exit 5), naming it: a SQLite
file that is empty or not SQLite (never recreated over), a folder that does not exist, a server that
does not answer (a few quick retries, not MLflow's minutes). MLflow records artifact locations as
absolute paths; when the project folder has moved (or been copied with its ``mlruns/``), the local
store's records are pointed at the ``mlruns/`` beside ``mlflow.db`` again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from pipeline.config import RegistryParams, SourceParams
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE, PROVENANCE_FILE
from pipeline.contracts.model import ModelMeta, Provenance, ServedModel
from pipeline.errors import LeadscoreError, RegistryError
from pipeline.runtime import quiet_loggers

log = logging.getLogger(__name__)

MODEL_TAG = "model_sha256"
BUNDLE_TAG = "bundle_sha256"   # model.txt and model_meta.json together (pipeline.contracts.model.bundle_sha256)
PROMOTED_TAG = "promoted"      # the evaluate stage's verdict: "true" or "false"
ARTIFACT_DIR = "leadscore"  # where a training run keeps model.txt, model_meta.json, provenance.json, outcomes
OUTCOMES_FILE = "outcomes.parquet"  # the closed deals (record_id, label) the run's model learnt from
MLFLOW_LOGGERS = ("alembic", "mlflow")
# A dead tracking server: a few quick retries, then a clear error (MLflow's own defaults retry for minutes).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # a few small files: no bars in logs
SQLITE_HEADER = b"SQLite format 3\x00"
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST",)  # MlflowException codes that mean "no such thing", not "unreachable"
_RELOCATED: set[str] = set()  # stores whose artifact locations this process has checked


@dataclass(frozen=True)
class Store:
    """Where runs and registered models live, and the names used there."""

    uri: str
    experiment_name: str
    model_name: str
    artifact_root: Path | None  # for the local SQLite store: mlruns/ beside it; None for a server

    @classmethod
    def of(cls, registry: RegistryParams, *, source: SourceParams, mlflow_db: Path) -> Store:
        """``MLFLOW_TRACKING_URI`` if set, else the SQLite file ``mlflow_db``; the registered model of
        the export ``source`` maps."""
        server = os.environ.get("MLFLOW_TRACKING_URI")
        return cls(uri=server or f"sqlite:///{mlflow_db}", experiment_name=registry.experiment_name,
                   model_name=registered_name(registry, source),
                   artifact_root=None if server else Path(mlflow_db).resolve().parent / "mlruns")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of a ``sqlite:///`` store, else None."""
        if not self.uri.startswith("sqlite:///"):
            return None
        return Path(unquote(self.uri.removeprefix("sqlite:///")))

    def check(self) -> None:
        """Fail fast, naming the fix, if this store cannot be used as it is."""
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        path = self.sqlite_path
        if path is None:
            return
        if self.artifact_root is not None:  # our own store (paths.mlflow_db): its folder is ours to make
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.is_dir():
            raise RegistryError(f"the MLflow store {self.uri}: its folder {path.parent} does not exist; fix "
                                "MLFLOW_TRACKING_URI or paths.mlflow_db")
        if path.exists():
            with path.open("rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
            if head != SQLITE_HEADER:
                raise RegistryError(f"{path} is {'empty' if not head else 'not a SQLite database'}, so not the "
                                    "MLflow registry it should be: restore it from a backup, or move it away to start "
                                    "a new registry (its models and champion would be lost). It was left as it is")

    @contextmanager
    def reach(self, doing: str) -> Iterator[None]:
        """Turn a failure to use the store into a :class:`RegistryError` that says what was being done."""
        try:
            yield
        except LeadscoreError:
            raise
        except Exception as exc:  # MLflow, SQLAlchemy and requests raise many kinds for one cause
            if getattr(exc, "error_code", None) in MISSING_CODES:
                raise
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise RegistryError(f"cannot reach the MLflow store {self.uri} while {doing}: {first}") from exc

    def client(self) -> Any:
        """An MlflowClient on this store's tracking server and registry, the store checked first."""
        self.check()
        quiet_loggers(*MLFLOW_LOGGERS)
        from mlflow import MlflowClient

        self.relocate()
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def relocate(self) -> None:
        """Point a local store's artifact locations at the ``mlruns/`` beside its database again, when the
        project folder has moved or been copied with it. MLflow records absolute paths; without this a
        moved project cannot fetch its champion, and new runs would write into the old folder."""
        path = self.sqlite_path
        if path is None or self.artifact_root is None or not path.exists() or str(path) in _RELOCATED:
            return
        _RELOCATED.add(str(path))
        new_root = self.artifact_root.as_uri()
        with closing_sqlite(path) as db:
            if not db.execute("SELECT name FROM sqlite_master WHERE name = 'experiments'").fetchone():
                return
            locations = [loc for (loc,) in db.execute("SELECT artifact_location FROM experiments")]
            runs = [uri for (uri,) in db.execute("SELECT artifact_uri FROM runs")]
            for old_root in sorted({r for r in map(_mlruns_root, locations) if r and r != new_root}):
                old_path = _local_path(old_root)
                copied = any((self.artifact_root / uri[len(old_root):].lstrip("/")).exists()
                             for uri in runs if uri and uri.startswith(old_root + "/"))
                if old_path is not None and old_path.is_dir() and not copied:
                    continue  # the old folder is still there and this one holds no copy of it: keep reading it
                for table, column in RELOCATED_COLUMNS:
                    if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                        db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                   f"WHERE {column} LIKE ? ESCAPE '\\'",
                                   (new_root, len(old_root) + 1, _like_prefix(old_root)))
                db.commit()
                log.warning("the project folder has moved: MLflow artifact locations in %s now point at %s "
                            "(they pointed at %s)", path, new_root, old_root)


# Where MLflow's SQLite store records artifact locations (absolute URIs): rewritten by Store.relocate.
RELOCATED_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                     ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                     ("model_versions", "source"))


@contextmanager
def closing_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path)
    try:
        yield db
    finally:
        db.close()


def _mlruns_root(location: str | None) -> str | None:
    """``file:///a/b/mlruns`` or ``file:///a/b/mlruns/3`` -> ``file:///a/b/mlruns``: the root an
    experiment's artifacts sit under (None for a location that is no local ``mlruns`` folder)."""
    if not location or not location.startswith("file:"):
        return None
    trimmed = location.rstrip("/")
    if trimmed.endswith("/mlruns"):
        return trimmed
    head, sep, _ = trimmed.rpartition("/mlruns/")
    return head + "/mlruns" if sep else None


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def registered_name(registry: RegistryParams, source: SourceParams) -> str:
    """The registered model of an export: ``registry.model_name`` if set, else "leadscore-synthetic"
    for the generator's export and "leadscore-<primary file>-<8 hex of the mapping>" for another, so
    switching ``source:`` in one checkout never scores one export with another's champion. The
    folder (``source.dir``) is not part of it: a refreshed export in a new folder keeps its champion."""
    if registry.model_name:
        return registry.model_name
    if source.kind == "synthetic" or source.primary is None:
        return "leadscore-synthetic"
    mapping = json.dumps(_named_mapping(source), sort_keys=True)
    stem = re.sub(r"[^A-Za-z0-9]+", "_", source.primary.file.stem).strip("_").lower() or "export"
    return f"leadscore-{stem}-{hashlib.sha256(mapping.encode()).hexdigest()[:8]}"


def _named_mapping(source: SourceParams) -> dict[str, Any]:
    """The mapping as it names its model: keys added since names were first given (``clock``, a
    column's ``personal``) count only when set, so an export keeps its registered model (and its
    champion) across that upgrade."""
    mapping = source.model_dump(mode="json", exclude={"dir"})
    if source.clock == type(source.clock)():
        mapping.pop("clock", None)
    for table in [mapping.get("primary"), *mapping.get("lookups", {}).values()]:
        for column in (table or {}).get("columns", {}).values():
            if column.get("personal") == "refused":
                column.pop("personal")
    return mapping


def _mlflow(store: Store) -> Any:
    """mlflow, pointed at the store and its experiment."""
    store.check()
    quiet_loggers(*MLFLOW_LOGGERS)
    import mlflow

    store.relocate()
    before = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(store.uri)
    # The registry too: log_model registers through mlflow's process-wide registry URI, which another
    # project in the same process (tests, a notebook) may have set to its own store.
    mlflow.set_registry_uri(store.uri)
    # MLflow also exports the URIs as MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI (for subprocesses). We
    # read the first as the user's choice, so put both back: otherwise a second project in the same
    # process would silently log to the first one's store.
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if store.artifact_root is not None and mlflow.get_experiment_by_name(store.experiment_name) is None:
        # Artifacts next to mlflow.db (paths.mlflow_db), not in ./mlruns of whatever folder we run from.
        mlflow.create_experiment(store.experiment_name, artifact_location=store.artifact_root.as_uri())
    mlflow.set_experiment(store.experiment_name)
    return mlflow


def flat(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params as dotted keys: {"train": {"num_leaves": 4}} -> {"train.num_leaves": 4}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def log_training_run(store: Store, *, meta: ModelMeta, provenance: Provenance, served: ServedModel,
                     models_dir: Path, params: dict[str, Any], bundle: str, outcomes: pd.DataFrame) -> str:
    """Log ``params``, validation figures, the model files, the closed deals it learnt from
    (``outcomes``: record_id, label; what the next model's "added since" is counted against) and
    the pyfunc that serves it, and register that pyfunc under the store's name; return the run id."""
    with store.reach("logging the training run"):
        mlflow = _mlflow(store)
        with mlflow.start_run(run_name=f"train {meta.model_version}") as run:
            mlflow.log_params(flat("", params))
            split = meta.split
            slices = {"train": split.train, "valid": split.valid, "test": split.test}
            mlflow.log_metrics({
                "valid_auc": meta.valid_auc,
                "best_iteration": meta.best_iteration,
                **{f"{name}_rows": part.rows for name, part in slices.items()},
                **{f"{name}_won": part.won for name, part in slices.items()},
            })
            mlflow.set_tags({
                MODEL_TAG: meta.model_sha256,
                BUNDLE_TAG: bundle,
                "model_version": meta.model_version,
                "train_data_sha256": meta.train_data_sha256,
                "params_sha256": meta.params_sha256,
                "git_commit": provenance.commit_text() or "unknown",
                "calibration": meta.calibration.method,
            })
            for name in (MODEL_FILE, MODEL_META_FILE, PROVENANCE_FILE):
                mlflow.log_artifact(str(models_dir / name), artifact_path=ARTIFACT_DIR)
            with tempfile.TemporaryDirectory(prefix="leadscore-outcomes-") as tmp:
                outcomes.to_parquet(Path(tmp) / OUTCOMES_FILE, index=False)
                mlflow.log_artifact(str(Path(tmp) / OUTCOMES_FILE), artifact_path=ARTIFACT_DIR)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.pyfunc.log_model(name="model", python_model=str(served.code), artifacts=served.artifacts,
                                        signature=served.signature, pip_requirements=served.pip_requirements,
                                        registered_model_name=store.model_name)
            run_id: str = run.info.run_id
    log.info("MLflow run %s logged to %s", run_id, store.uri)
    return run_id


def read_outcomes(store: Store, run_id: str) -> pd.DataFrame | None:
    """The closed deals the run's model learnt from (None if the run did not log them, or they are
    gone from its artifacts)."""
    import mlflow

    store.client()  # checks the store, and points a moved project's artifact locations at its own mlruns/
    with tempfile.TemporaryDirectory(prefix="leadscore-outcomes-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{ARTIFACT_DIR}/{OUTCOMES_FILE}",
                                                       dst_path=tmp, tracking_uri=store.uri)
            return pd.read_parquet(path)
        except Exception as exc:  # an older run, or a pruned artifact store: the count is unknown, not fatal
            log.warning("cannot read the outcomes run %s learnt from (%s): what was added since is unknown",
                        run_id, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return None


def log_evaluation(store: Store, *, model_sha256: str, metrics: dict[str, float], artifacts: list[Path],
                   tags: dict[str, str] | None = None) -> str:
    """Add holdout metrics and plot files to the run that trained this model (a new run if none)."""
    with store.reach("logging the evaluation"):
        mlflow = _mlflow(store)
        found = mlflow.search_runs(
            experiment_names=[store.experiment_name],
            filter_string=f"tags.{MODEL_TAG} = '{model_sha256}'",
            order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
        )
        run_id = found[0].info.run_id if found else None
        if run_id is None:
            log.warning("no MLflow run found for model %s; logging the evaluation to a new run", model_sha256[:12])
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else "evaluate") as run:
            if run_id is None:
                mlflow.set_tag(MODEL_TAG, model_sha256)
            mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
            if tags:
                mlflow.set_tags(tags)
            for path in artifacts:
                mlflow.log_artifact(str(path), artifact_path="evaluation")
            result: str = run.info.run_id
    return result
