"""End to end: `dvc repro` on a temporary copy of the project with a small export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, registry_client

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | extra_env
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(n_leads=3000, n_accounts=800)
    params["evaluate"]["bootstrap_rounds"] = 100  # every interval is still computed and written; the backtest stays
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init = _run(["dvc", "init", "--no-scm", "-q"], root)
    assert init.returncode == 0, init.stderr
    repro = _run(["dvc", "repro"], root, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false")  # no pickle anywhere
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    return root


def test_repro_writes_scores_for_every_open_deal(project: Path) -> None:
    features = pd.read_parquet(project / "data/features/features.parquet")
    scores = pd.read_csv(project / "data/scores/scores.csv", dtype={"registry_version": str})
    open_deals = features[features["outcome"] == "open"]
    assert len(scores) == len(open_deals) > 0
    assert set(scores["record_id"]) == set(open_deals["record_id"])
    assert {"probability", "score", "grade", "next_step", "next_step_rule", "reason_for_1", "reason_against_1",
            "what_would_raise", "budget_status", "budget_reason", "model_version", "registry_version",
            "model_status", "scored_at"} <= set(scores.columns)
    assert set(scores["model_status"]) <= {"champion", "unpromoted"}
    # Every lead has at least one worded reason, and no reason shows a column name.
    reasons = scores.filter(regex=r"^reason_(for|against)_\d$").fillna("")
    assert (reasons != "").any(axis=1).all()
    names = [n for n in features.columns if "_" in n]
    checklist = scores.filter(regex=r"_reason$").fillna("")
    texts = [t for t in [*reasons.to_numpy().ravel(), *checklist.to_numpy().ravel()] if t]
    assert not [t for t in texts if re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", t) or any(n in t for n in names)]
    board = (project / "data/scores/lead_board.html").read_text(encoding="utf-8")
    assert board.count("<tr data-record-id=") == len(scores) and not re.search(r"(src|href)=\"https?:", board)
    parquet = pd.read_parquet(project / "data/scores/scores.parquet")
    pd.testing.assert_frame_equal(scores.astype(object).fillna(""), parquet[scores.columns].astype(object).fillna(""),
                                  check_dtype=False)


def test_metrics_show_prints_the_headline_within_120_columns(project: Path) -> None:
    headline = json.loads((project / "reports/metrics.json").read_text())
    assert set(headline) == {"auc", "auc_low", "lift10", "brier", "ece", "worst_auc", "promoted"}
    detail = json.loads((project / "reports/evaluation.json").read_text())
    assert headline["auc"] == detail["roc_auc"] and headline["auc_low"] == detail["roc_auc_ci_low"]
    for key in ("pr_auc", "lift_top_10pct", "better_than_chance", "baselines", "conversion_by_grade"):
        assert key in detail
    assert len(detail["backtest"]) == 4 and headline["worst_auc"] == min(w["roc_auc"] for w in detail["backtest"])
    shown = _run(["dvc", "metrics", "show"], project)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert len(lines) == 2 and "auc_low" in lines[0] and max(map(len, lines)) <= 120, shown.stdout


def test_plots_show_draws_the_figures_without_the_network(project: Path) -> None:
    out = project / "plots_html"
    plots = _run(["dvc", "plots", "show", "-o", str(out)], project)
    assert plots.returncode == 0, plots.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    for name in ("roc", "calibration", "gains", "precision_recall", "backtest", "shap_summary"):
        image = re.search(rf'<img src="(static/[^"]*figures_{name}\.png)"', html)
        assert image and (out / image.group(1)).stat().st_size > 5000, name
    backtest = pd.read_csv(project / "reports/plots/backtest.csv")
    assert list(backtest["window"]) == [1, 2, 3, 4] and backtest["roc_auc"].notna().all()


def test_mlflow_run_holds_params_metrics_and_model(project: Path) -> None:
    client = registry_client(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("leadscore")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["train.learning_rate"] == "0.05"
    assert {"valid_auc", "test_roc_auc", "test_brier"} <= set(run.data.metrics)
    models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert [m.name for m in models] == ["model"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "leadscore")}
    assert {"leadscore/model.txt", "leadscore/model_meta.json"} <= artifacts
    meta = json.loads((project / "models/model_meta.json").read_text())
    assert run.data.tags["model_sha256"] == meta["model_sha256"]


def test_second_repro_is_up_to_date(project: Path) -> None:
    again = _run(["dvc", "repro"], project)
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout
    status = _run(["dvc", "status"], project)
    assert "Data and pipelines are up to date" in status.stdout


def test_the_nightly_job_on_the_raw_export_writes_the_stages_bytes_outside_dvc(project: Path) -> None:
    leadscore = str(Path(sys.executable).parent / "leadscore")
    done = _run([leadscore, "score", "--export", "data/raw", "--output", "nightly/scores.csv"], project)
    assert done.returncode == 0, done.stderr
    assert (project / "nightly/scores.csv").read_bytes() == (project / "data/scores/scores.csv").read_bytes()
    assert len(list((project / "data/history").glob("scored_date=*/*.parquet"))) == 1  # the stage's run, replaced
    status = _run(["dvc", "status"], project)
    assert "Data and pipelines are up to date" in status.stdout  # the history is no DVC output


def test_explain_prints_a_card_and_names_an_unknown_id(project: Path) -> None:
    scores = pd.read_csv(project / "data/scores/scores.csv", dtype={"registry_version": str})
    lead = scores.iloc[0]
    leadscore = str(Path(sys.executable).parent / "leadscore")
    shown = _run([leadscore, "explain", str(lead["record_id"])], project)
    assert shown.returncode == 0, shown.stderr
    card = shown.stdout
    for text in (f"Lead {lead['record_id']}", f"Score {lead['score']}", f"Grade {lead['grade']}", "Why this score",
                 "Qualification checklist", str(lead["reason_for_1"] or lead["reason_against_1"])[:30]):
        assert text in card, text
    unknown = _run([leadscore, "explain", "NO-SUCH-LEAD"], project)
    assert unknown.returncode == 3
    assert "no scored lead has id 'NO-SUCH-LEAD'" in unknown.stderr and "ids look like" in unknown.stderr


def test_the_lead_board_lists_at_most_board_max_leads(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["score"]["board_max_leads"] = 10
    params["paths"]["scores"] = "capped_scores"  # beside the DVC outputs, which stay untouched
    (project / "capped.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    leadscore = str(Path(sys.executable).parent / "leadscore")
    done = _run([leadscore, "score", "--params", "capped.yaml"], project)
    assert done.returncode == 0, done.stderr
    scores = pd.read_csv(project / "capped_scores/scores.csv")
    board = (project / "capped_scores/lead_board.html").read_text(encoding="utf-8")
    assert len(scores) > 10 and board.count("<tr data-record-id=") == 10
    assert f"Showing the 10 highest-scored of {len(scores):,} leads" in board


NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_on_the_small_run(project: Path, path: Path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("LEADSCORE_PARAMS", str(project / "params.yaml"))
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors and sum(len(c.get("outputs", [])) for c in notebook.cells) >= 5
    # The figures render as Jupyter shows them: PNG outputs in the executed notebook, not a silent backend.
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= {"01-explore-export.ipynb": 1, "02-model-report.ipynb": 3}[path.name], len(images)


def test_notebooks_are_committed_without_outputs() -> None:
    import nbformat

    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
