"""Switching `source:` in one checkout, as the docs' "run an example with DVC" step does: the Maven
example runs under `dvc repro` with every row kept, each export has its own registered model, and one
export is never scored with another's champion."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, registry_client
from tests.integration.test_dvc_smoke import _run

pytestmark = pytest.mark.slow
MAVEN = REPO.parent / "shared" / "data" / "maven_crm"
# No backtest and a shorter bootstrap in all three runs: this test is about which export's champion
# scores, not about the figures (test_dvc_smoke checks the backtest under `dvc repro`). The intervals
# stay wide of their thresholds: synthetic's AUC low bound is far above 0.5, Maven's straddles it.
FAST_EVALUATE = {"backtest_windows": 0, "bootstrap_rounds": 100}


def _scores(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / "data/scores/scores.csv", dtype={"registry_version": str})


@pytest.mark.skipif(not MAVEN.exists(), reason="shared/data/maven_crm is not beside the repository")
def test_the_maven_example_after_the_default_and_back(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "pipeline", project / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "examples", project / "examples")
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(n_leads=3000, n_accounts=800)
    params["gates"]["must_beat_baselines"] = False  # a small export: the point here is whose champion scores
    params["evaluate"].update(FAST_EVALUATE)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    default_params = (project / "params.yaml").read_text()
    assert _run(["dvc", "init", "--no-scm", "-q"], project).returncode == 0
    first = _run(["dvc", "repro"], project)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    synthetic = _scores(project)
    assert set(synthetic["model_status"]) == {"champion"} and set(synthetic["registry_version"]) == {"1"}

    # The documented switch: the example's params, in effect, as params.yaml; then the pipeline.
    shutil.copytree(MAVEN, project / "maven_crm")  # the shared copy is read-only
    example = project / "examples/maven_crm/params.yaml"
    example.write_text(example.read_text().replace("../shared/data/maven_crm", str(project / "maven_crm")))
    leadscore = str(Path(sys.executable).parent / "leadscore")
    shown = subprocess.run([leadscore, "params", "--params", str(example)], cwd=project, capture_output=True,
                           text=True, check=True)
    in_effect = yaml.safe_load(shown.stdout)
    assert in_effect["source"]["primary"]["file"] == "sales_pipeline.csv"
    in_effect["evaluate"].update(FAST_EVALUATE)
    (project / "params.yaml").write_text(yaml.safe_dump(in_effect, sort_keys=False))
    maven = _run(["dvc", "repro"], project)
    assert maven.returncode == 0, maven.stdout[-2000:] + maven.stderr[-2000:]
    scores = _scores(project)
    assert len(scores) == 2089 and set(scores["record_id"]).isdisjoint(synthetic["record_id"])
    ingest_report = json.loads((project / "reports/ingest.json").read_text())
    assert ingest_report["primary"] == {"rows_read": 8800, "rows_kept": 8800, "rows_quarantined": 0}
    assert json.loads((project / "reports/evaluation.json").read_text())["better_than_chance"] is False
    # Maven has no signal: its own model is recorded, never promoted, and scores say so; the
    # synthetic champion is not used for it.
    assert set(scores["model_status"]) == {"unpromoted"}
    client = registry_client(f"sqlite:///{project / 'mlflow.db'}")
    names = {m.name for m in client.search_registered_models()}
    assert "leadscore-synthetic" in names and len(names) == 2
    maven_name = next(n for n in names if n != "leadscore-synthetic")
    assert maven_name.startswith("leadscore-sales_pipeline-")
    assert not client.get_registered_model(maven_name).aliases
    assert str(client.get_model_version_by_alias("leadscore-synthetic", "champion").version) == "1"

    # Back to the default: the synthetic champion scores the synthetic leads again, with the same scores.
    (project / "params.yaml").write_text(default_params)
    back = _run(["dvc", "repro"], project)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-2000:]
    again = _scores(project)
    assert set(again["model_status"]) == {"champion"} and set(again["registry_version"]) == {"1"}
    pd.testing.assert_frame_equal(again.drop(columns=["scored_at"]), synthetic.drop(columns=["scored_at"]))
