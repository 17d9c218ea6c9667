"""Failing closed. When the champion can't be fetched, the registry can't be reached or is damaged,
or a model's files are not the bytes that were registered: nothing is promoted, nothing is scored
with a model the registry can't vouch for, and the message and exit code say so. Artifact
locations survive moving the project folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.contracts.features import write_feature_set
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE, SCORES_PARQUET
from pipeline.errors import ModelError, RegistryError
from pipeline.io.files import read_json, write_json
from pipeline.mlops import registry
from pipeline.mlops.selection import scoring_model
from pipeline.mlops.tracking import Store
from pipeline.stages import evaluate, score, train
from tests.conftest import REPO, holder, make_settings

pytestmark = pytest.mark.slow


def _settings(root: Path) -> Settings:
    # A small export: its holdout is too short to show the model is no worse than logistic regression
    # within the baselines gate's tolerance, and these tests need a champion. They are about failing
    # closed, not the figures: no backtest, and a shorter bootstrap for the gates' intervals.
    return make_settings(root, generate={"n_leads": 3000, "n_accounts": 800}, gates={"must_beat_baselines": False},
                         evaluate={"backtest_windows": 0, "bootstrap_rounds": 100})


def _store(settings: Settings) -> Store:
    return Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)


@pytest.fixture(scope="module")
def trained(small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose champion (version 1) passed the gates: features, models, mlflow.db, mlruns/."""
    root = tmp_path_factory.mktemp("trained") / "project"
    settings = _settings(root)
    write_feature_set(small.features, settings.paths.features)
    write_json(settings.paths.features_report, small.features.report)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    train.run(settings)
    assert json.loads(json.dumps(evaluate.run(settings).metrics["promoted"])) is True
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained project (its mlflow.db still names the original's artifact folder)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    copy = tmp_path / "project"
    shutil.copytree(trained, copy)
    return copy


def _params(root: Path) -> Path:
    path = root / "params.yaml"
    path.write_text(json.dumps(_settings(root).model_dump(mode="json")))
    return path


def test_a_moved_project_still_fetches_and_compares_its_champion(trained: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(trained, moved)
    hidden = trained.with_name("hidden")
    trained.rename(hidden)  # the old folder is gone: MLflow's absolute artifact paths point nowhere
    try:
        settings = _settings(moved)
        shutil.rmtree(settings.paths.models)  # so the champion can only come from the registry's artifacts
        model, status = scoring_model(_store(settings), models_dir=settings.paths.models)
        assert status == "champion" and model.registry_version == "1"
        # The old folder is gone, so the champion's bytes came from the copy's own mlruns/.
        run_id = holder(_store(settings)).run_id
        assert (moved / "mlruns" / run_id / "artifacts" / "leadscore" / "model.txt").exists()
    finally:
        hidden.rename(trained)


def test_a_champion_whose_files_are_gone_is_not_replaced(project: Path) -> None:
    settings = _settings(project)
    store = _store(settings)
    champion = registry.aliased(store)
    assert champion is not None
    for artifacts in (project / "mlruns").glob(f"{champion.run_id}/artifacts"):
        shutil.rmtree(artifacts)  # a pruned mlruns/
    train.run(settings.model_copy(update={"train": settings.train.model_copy(update={"num_leaves": 6})}))
    evaluate.run(settings)
    promotion = read_json(settings.paths.promotion)
    assert promotion["promoted"] is False
    gate = next(g for g in promotion["gates"] if g["gate"] == "champion")
    assert not gate["passed"] and "cannot be fetched, so it is not replaced" in gate["detail"]
    assert "leadscore rollback --to" in gate["detail"]
    assert holder(store).version == champion.version


def test_local_metadata_that_differs_from_the_registered_bytes_is_not_used(project: Path, caplog) -> None:
    settings = _settings(project)
    meta_path = settings.paths.models / MODEL_META_FILE
    honest = scoring_model(_store(settings), models_dir=settings.paths.models)[0]
    meta = read_json(meta_path)
    meta["calibration"]["params"]["a"] = -meta["calibration"]["params"]["a"]  # every score inverted
    write_json(meta_path, meta)
    model, status = scoring_model(_store(settings), models_dir=settings.paths.models)
    assert status == "champion"
    assert model.meta.calibration == honest.meta.calibration  # the registry's copy, not the edited one
    assert "other metadata than it was registered with" in caplog.text
    # An altered artifact store: the registry's own copy is refused.
    store = _store(settings)
    champion = registry.aliased(store)
    assert champion is not None
    for stored in (project / "mlruns").glob(f"{champion.run_id}/artifacts/leadscore/{MODEL_META_FILE}"):
        write_json(stored, meta)
    with pytest.raises(ModelError, match="are not those its training run recorded"):
        scoring_model(store, models_dir=settings.paths.models)


def _cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--params", str(_params(root))],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)


def test_a_dead_registry_server_refuses_scoring_quickly_and_names_the_override(project: Path) -> None:
    started = time.monotonic()
    done = _cli(project, "score", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert done.returncode == 5, done.stderr
    assert time.monotonic() - started < 120  # a few quick retries, not MLflow's minutes
    assert "cannot reach the MLflow store http://127.0.0.1:9" in done.stderr and "--model" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (_settings(project).paths.scores / SCORES_PARQUET).exists()


def test_a_missing_or_damaged_registry_is_reported_never_recreated(project: Path) -> None:
    missing = _cli(project, "score", env={"MLFLOW_TRACKING_URI": f"sqlite:///{project}/nowhere/mlflow.db"})
    assert missing.returncode == 5 and "nowhere does not exist" in missing.stderr
    db = _settings(project).paths.mlflow_db
    db.write_bytes(b"")  # a zero-byte mlflow.db
    for command in ("score", "evaluate"):
        done = _cli(project, command)
        assert done.returncode == 5, done.stderr
        assert "is empty, so not the MLflow registry" in done.stderr and "It was left as it is" in done.stderr
    assert db.stat().st_size == 0
    # The explicit override still scores, with the local files, and says so in every row.
    out = project / "local.csv"
    matrix = pd.read_parquet(_settings(project).paths.features / "features.parquet")
    matrix[matrix["outcome"] == "open"].head(50).to_parquet(project / "open.parquet")
    assert main(["score", "-q", "--params", str(_params(project)), "--input", str(project / "open.parquet"),
                 "--output", str(out), "--model", str(_settings(project).paths.models)]) == 0
    assert set(pd.read_csv(out)["model_status"]) == {"file"}


def test_a_model_folder_must_be_self_consistent_and_loadable(project: Path, tmp_path: Path) -> None:
    models = _settings(project).paths.models
    lie = tmp_path / "lie"
    shutil.copytree(models, lie)
    meta = read_json(lie / MODEL_META_FILE)
    meta["model_version"] = "lgbm-000000000000"
    write_json(lie / MODEL_META_FILE, meta)
    with pytest.raises(ModelError, match="names version lgbm-000000000000, but its bytes are lgbm-"):
        scoring_model(_store(_settings(project)), models_dir=models, which=str(lie))
    # A truncated model.txt whose metadata was made to match: a clear error, not a crash of the process.
    broken = tmp_path / "broken"
    shutil.copytree(models, broken)
    text = (broken / MODEL_FILE).read_bytes()
    (broken / MODEL_FILE).write_bytes(text[: len(text) // 2])
    import hashlib

    from pipeline.modeling.model import model_version

    sha = hashlib.sha256(text[: len(text) // 2]).hexdigest()
    meta = read_json(broken / MODEL_META_FILE)
    write_json(broken / MODEL_META_FILE, meta | {"model_sha256": sha, "model_version": model_version(sha)})
    matrix = pd.read_parquet(_settings(project).paths.features / "features.parquet").head(20)
    matrix.to_parquet(tmp_path / "in.parquet")
    done = _cli(project, "score", "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "o.csv"),
                "--model", str(broken))
    assert done.returncode == 4, done.stderr
    assert "truncated or damaged" in done.stderr


def test_rollback_to_a_version_that_failed_its_gates_warns(project: Path, capsys) -> None:
    settings = _settings(project)
    train.run(settings.model_copy(update={"train": settings.train.model_copy(update={"num_leaves": 2,
                                                                                   "num_boost_round": 1})}))
    evaluate.run(settings)
    store = _store(settings)
    failed = registry.versions(store)[-1]
    assert failed.gates_passed is False and not failed.was_champion
    assert main(["rollback", "--params", str(_params(project)), "--to", failed.version]) == 0
    captured = capsys.readouterr()
    assert f"version {failed.version} FAILED its gates" in captured.err
    assert f"version {failed.version} is the champion now (it never was before)" in captured.out
    assert holder(store).version == failed.version
    assert main(["rollback", "--params", str(_params(project))]) == 0
    assert "is the champion again" in capsys.readouterr().out


def test_score_refuses_a_champion_trained_on_other_features_naming_the_ways_out(project: Path) -> None:
    settings = _settings(project)
    features = read_json(settings.paths.features / "feature_spec.json")
    write_json(settings.paths.features / "feature_spec.json", [f for f in features if f["name"] != "employees"])
    matrix = pd.read_parquet(settings.paths.features / "features.parquet").drop(columns=["employees"])
    matrix.to_parquet(settings.paths.features / "features.parquet")
    with pytest.raises(ModelError, match=r"the champion of leadscore-synthetic \(registry version 1"):
        score.run(settings)
    try:
        score.run(settings)
    except ModelError as exc:
        assert "leadscore rollback --to VERSION" in str(exc) and "Restore the params" in str(exc)


def test_an_unreachable_registry_stops_evaluate_before_anything_is_written(project: Path) -> None:
    settings = _settings(project)
    settings.paths.metrics.unlink(missing_ok=True)
    done = _cli(project, "evaluate", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert done.returncode == 5 and "Traceback" not in done.stderr
    assert not settings.paths.metrics.exists()
    with pytest.raises(RegistryError):
        registry.aliased(Store(uri="http://127.0.0.1:9", experiment_name="x", model_name="y", artifact_root=None))
