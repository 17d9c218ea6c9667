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


def test_a_registry_another_project_pointed_mlflow_at_is_not_used(tmp_path: Path, monkeypatch) -> None:
    """log_model registers through mlflow's process-wide registry URI: another project in the same
    process (a test of the pyfunc, a notebook) setting it must not take this project's models."""
    import mlflow

    from pipeline.mlops.tracking import Store, _mlflow
    from tests.conftest import make_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)  # mlflow exported it: the user did not
    settings = make_settings(tmp_path / "a")
    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    _mlflow(store)
    assert mlflow.get_registry_uri() == store.uri
    assert "MLFLOW_REGISTRY_URI" not in os.environ
