"""The registered MLflow model as MLflow users reach it: ``mlflow.pyfunc.load_model
("models:/<name>@champion")`` and ``mlflow models serve`` return what ``scores.csv`` holds for the
same rows (calibrated probability, score, grade, reasons, checklist, next step), with a signature
and no pickle."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from pipeline.config import DISPLAY_COLUMNS, Settings
from pipeline.contracts.features import write_feature_set
from pipeline.contracts.files import SCORES_CSV
from pipeline.feedback import FEEDBACK_COLUMNS
from pipeline.io.files import write_json
from pipeline.mlops.tracking import Store
from pipeline.scoring.pyfunc import BATCH_COLUMNS
from pipeline.stages import evaluate, score, train
from tests.conftest import holder, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(small, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Store]:
    """Trained, promoted and scored: a champion in the registry and its scores.csv."""
    root = tmp_path_factory.mktemp("pyfunc") / "project"
    settings = make_settings(root, generate={"n_leads": 3000, "n_accounts": 800},
                             gates={"must_beat_baselines": False})
    write_feature_set(small.features, settings.paths.features)
    write_json(settings.paths.features_report, small.features.report)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    train.run(settings)
    evaluate.run(settings)
    score.run(settings)
    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    holder(store)
    return settings, store


def _open_rows(settings: Settings, n: int) -> pd.DataFrame:
    matrix = pd.read_parquet(settings.paths.features / "features.parquet")
    return matrix[matrix["outcome"] == "open"].head(n).reset_index(drop=True)


def _assert_same_as_scores_csv(out: pd.DataFrame, settings: Settings) -> None:
    csv = pd.read_csv(settings.paths.scores / SCORES_CSV, keep_default_na=False).set_index("record_id")
    expected = csv.loc[out["record_id"]].reset_index()
    # The stage adds what the model does not know: display-only columns and the reps' values beside its own.
    added = set(BATCH_COLUMNS) | set(FEEDBACK_COLUMNS) | (set(DISPLAY_COLUMNS.values()) & set(expected.columns))
    assert set(expected.columns) - set(out.columns) == added
    np.testing.assert_allclose(out["probability"].astype(float), expected["probability"].astype(float), atol=1e-6)
    for column in out.columns:
        if column == "probability":
            continue
        got, want = out[column].astype(object).fillna("").astype(str), expected[column].astype(str)
        assert (got.to_numpy() == want.to_numpy()).all(), f"{column}: {got.head(3).tolist()} vs {want.head(3).tolist()}"


def test_the_champion_loads_from_the_registry_and_scores_as_scores_csv(project) -> None:
    import mlflow

    settings, store = project
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    uri = f"models:/{store.model_name}@champion"
    model = mlflow.pyfunc.load_model(uri)
    signature = model.metadata.signature
    assert signature is not None
    inputs = {c["name"]: c for c in signature.inputs.to_dict()}
    assert inputs["record_id"]["required"] and inputs["employees"]["type"] == "double"
    assert {c["name"] for c in signature.outputs.to_dict()} >= {"probability", "score", "grade", "reason_for_1"}
    rows = _open_rows(settings, 300)
    out = model.predict(rows)
    assert len(out) == len(rows) and list(out["record_id"]) == list(rows["record_id"])
    _assert_same_as_scores_csv(out, settings)
    # A model from code: its files are the code, the LightGBM text and JSON; no pickle among them.
    local = Path(mlflow.artifacts.download_artifacts(uri))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert "model_code_path" in mlmodel["flavors"]["python_function"]
    suffixes = {p.suffix for p in local.rglob("*") if p.is_file()}
    assert not suffixes & {".pkl", ".pickle", ".cloudpickle", ".joblib"}, suffixes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(project) -> Iterator[str]:
    """`mlflow models serve -m models:/<name>@champion` on a free local port."""
    settings, store = project
    port = _free_port()
    # mlflow starts the server with a bare `uvicorn`: the venv's own, whether or not the venv is activated
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = settings.paths.scores.parent / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m",
             f"models:/{store.model_name}@champion", "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a readiness wait, not a timing assertion
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"mlflow models serve exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"mlflow models serve did not answer /ping: {log.read_text()[-2000:]}")
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def _post(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/invocations", json=body, timeout=60)


def test_mlflow_models_serve_answers_rest_with_the_scores_of_scores_csv(project, served: str) -> None:
    settings, _ = project
    rows = _open_rows(settings, 40)
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", date_format="iso", index=False))}
    answer = _post(served, body)
    assert answer.status_code == 200, answer.text[:500]
    out = pd.DataFrame(answer.json()["predictions"])
    assert list(out["record_id"]) == list(rows["record_id"])
    _assert_same_as_scores_csv(out, settings)
    # A lead missing a feature the model needs, or with text in a number: a 400 naming the column.
    record = json.loads(rows.head(1).to_json(orient="records", date_format="iso"))[0]
    missing = _post(served, {"dataframe_records": [{k: v for k, v in record.items() if k != "employees"}]})
    assert missing.status_code == 400 and "employees" in missing.json()["message"]
    text = _post(served, {"dataframe_records": [record | {"employees": "lots"}]})
    assert text.status_code == 400 and "employees" in text.json()["message"]
