"""The MLflow store: where runs and artifacts go, and nothing leaked into the environment."""

import os
from pathlib import Path


def test_logging_to_mlflow_does_not_leak_the_store_into_the_environment(tmp_path: Path, monkeypatch) -> None:
    from pipeline.mlops.tracking import Store, _mlflow
    from tests.conftest import make_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    _mlflow(Store.of(first.registry, source=first.source, mlflow_db=first.paths.mlflow_db))
    assert "MLFLOW_TRACKING_URI" not in os.environ
    store = Store.of(second.registry, source=second.source, mlflow_db=second.paths.mlflow_db)
    assert store.uri == f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"
    assert store.artifact_root == tmp_path / "b" / "mlruns"
