"""Month after month: outcomes arrive in the export folder, `dvc repro` retrains on them, and the
champion moves only on the paired comparison. The synthetic world is exported at two dates (the
same world later: deals closed, new leads); month 2's rows are appended to month 1's files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.config import GenerateParams
from pipeline.data.generate import generate, write_export
from tests.conftest import REPO, registry_client

pytestmark = pytest.mark.slow

WORLD_END, MONTH_1, MONTH_2 = date(2026, 6, 30), date(2025, 12, 31), date(2026, 2, 28)
SIZE = {"n_leads": 6000, "n_accounts": 1500}
EXPORT = Path("exports/crm")  # the user's export folder: no stage writes it


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _export(root: Path, export_date: date) -> dict[str, pd.DataFrame]:
    params = GenerateParams(**SIZE, export_date=export_date, world_end_date=WORLD_END)
    written = write_export(generate(params=params, seed=7), raw_dir=root / "month", truth_dir=root / "truth")
    tables = {name: pd.read_csv(written[name], dtype=str, keep_default_na=False)
              for name in ("accounts", "leads", "deals", "events")}
    shutil.rmtree(root / "month")
    return tables


def _closed_ids(project: Path) -> set[str]:
    matrix = pd.read_parquet(project / "data/features/features.parquet", columns=["record_id", "label"])
    return set(matrix.loc[matrix["label"].notna(), "record_id"])


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    project = tmp_path_factory.mktemp("retrain")
    shutil.copytree(REPO / "pipeline", project / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(n_leads=500, n_accounts=100)  # the demo export, unused here
    params["source"]["dir"] = str(EXPORT)
    params["gates"]["must_beat_baselines"] = False  # a small export: this test is about the champion
    # Nor is it about the backtest (test_dvc_smoke checks it): none, and a shorter paired bootstrap.
    params["evaluate"].update(backtest_windows=0, bootstrap_rounds=100)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _run(["dvc", "init", "--no-scm", "-q"], project).returncode == 0

    first = _export(project, MONTH_1)
    (project / EXPORT).mkdir(parents=True)
    for name, frame in first.items():
        frame.to_csv(project / EXPORT / f"{name}.csv", index=False)
    month_1 = _run(["dvc", "repro"], project)
    assert month_1.returncode == 0, month_1.stdout[-3000:] + month_1.stderr[-3000:]
    closed_1 = _closed_ids(project)
    promotion_1 = json.loads((project / "reports/promotion.json").read_text())

    # Month 2: the deals that closed since and the new ones, appended as a CRM export appends them.
    second = _export(project, MONTH_2)
    appended = {}
    for name in ("leads", "deals", "events", "accounts"):
        before = first[name].drop_duplicates()
        merged = second[name].merge(before, how="left", indicator=True)
        rows = second[name][(merged["_merge"] == "left_only").to_numpy()]
        rows.to_csv(project / EXPORT / f"{name}.csv", mode="a", header=False, index=False)
        appended[name] = rows
    month_2 = _run(["dvc", "repro"], project)
    assert month_2.returncode == 0, month_2.stdout[-3000:] + month_2.stderr[-3000:]
    return {"project": project, "closed_1": closed_1, "deal_ids_1": list(first["deals"]["deal_id"]),
            "closed_2": _closed_ids(project), "appended": appended, "promotion_1": promotion_1,
            "log": month_2.stdout + month_2.stderr}


def test_month_two_reruns_from_ingest_and_reads_the_appended_rows(months) -> None:
    project, appended = months["project"], months["appended"]
    log = months["log"]
    for stage in ("ingest", "features", "train", "evaluate", "score"):
        assert f"Running stage '{stage}'" in log
    deals = appended["deals"]
    assert len(deals) > 200 and deals["closed_date"].ne("").sum() > 100  # closed since, and new deals
    report = json.loads((project / "reports/ingest.json").read_text())["primary"]
    assert report["rows_read"] == len(pd.read_csv(project / EXPORT / "deals.csv"))
    # A deal appended again (it closed since) replaces its earlier row, which is quarantined as superseded.
    updated = set(deals["deal_id"]) & set(months["deal_ids_1"])
    assert len(updated) > 100
    quarantine = pd.read_csv(project / "data/interim/quarantine.csv", dtype=str)
    primary = quarantine[quarantine["table"] == "primary"]
    ids = primary["record"].map(lambda record: json.loads(record)["deal_id"])
    superseded = primary["reason"].str.startswith("superseded by a later row")
    assert updated <= set(ids)  # each earlier row is set aside: superseded, or already for a reason of its own
    assert superseded.sum() >= 0.9 * len(updated)


def test_the_new_outcomes_are_counted_into_training(months) -> None:
    project = months["project"]
    added = months["closed_2"] - months["closed_1"]
    assert len(added) > 100 and not months["closed_1"] - months["closed_2"]
    provenance = json.loads((project / "models/provenance.json").read_text())
    outcomes = provenance["outcomes"]
    assert outcomes["previous_version"] == "1"
    assert outcomes["added"] == len(added) and outcomes["relabelled"] == 0 and outcomes["dropped"] == 0
    assert sum(outcomes["added_by_slice"].values()) == len(added)
    assert outcomes["outcomes"] == len(months["closed_2"])
    evaluation = json.loads((project / "reports/evaluation.json").read_text())
    assert evaluation["training_outcomes"]["added"] == len(added)
    assert json.loads((project / "reports/metrics.json").read_text())["added"] == len(added)
    card = (project / "reports/model_card.md").read_text()
    assert f"{len(added):,} added since version 1" in card


def test_a_new_registry_version_and_a_paired_decision(months) -> None:
    project = months["project"]
    assert months["promotion_1"]["promoted"] is True
    client = registry_client(f"sqlite:///{project / 'mlflow.db'}")
    versions = sorted(int(v.version) for v in client.search_model_versions("name = 'leadscore-synthetic'"))
    assert versions == [1, 2]
    promotion = json.loads((project / "reports/promotion.json").read_text())
    assert promotion["challenger"]["registry_version"] == "2"
    paired = promotion["challenger_minus_champion"]
    for metric in ("roc_auc", "brier", "ece"):
        assert paired[metric]["low"] <= paired[metric]["delta"] <= paired[metric]["high"]
    gate = next(g for g in promotion["gates"] if g["gate"] == "champion")
    assert "challenger − champion (version 1)" in gate["detail"] and "95% paired intervals" in gate["detail"]
    assert promotion["champion_before"]["version"] == "1"
    assert promotion["champion"]["version"] == ("2" if promotion["promoted"] else "1")


def test_an_edited_generated_export_is_never_silently_restored(months) -> None:
    project = months["project"]
    deals = project / "data/raw/deals.csv"
    deals.write_text(deals.read_text() + "D9999999,L0000001,2025-01-01,2025-02-01,Closed Won,1000,\n")
    edited = deals.read_bytes()
    done = _run(["dvc", "repro"], project)
    assert done.returncode != 0
    assert "deals.csv changed after `leadscore generate` wrote it" in done.stderr + done.stdout
    assert "point source.dir at it" in done.stderr + done.stdout
    assert deals.read_bytes() == edited  # the edit is still there
