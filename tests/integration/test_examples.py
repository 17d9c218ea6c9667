"""The shipped examples: the real Maven CRM export (relational) and the flat contacts report,
each trained and scored through the stages with nothing but its params file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import Settings, load_settings
from pipeline.data.ingest import IngestResult
from pipeline.stages import evaluate, features, generate, ingest, score, train
from tests.conftest import REPO

pytestmark = pytest.mark.slow
MAVEN = REPO.parent / "shared" / "data" / "maven_crm"
EXAMPLES = sorted((REPO / "examples").glob("*/params.yaml"))


def _local_settings(example: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The example's params with every output (and MLflow) under ``root``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(root)
    params = yaml.safe_load((REPO / "examples" / example / "params.yaml").read_text())  # its source: only
    if example == "maven_crm":
        shutil.copytree(MAVEN, root / "maven_crm")  # the source is read-only: work on a copy
        params["source"]["dir"] = "maven_crm"
    # A shorter bootstrap for the intervals (the default is 500 rounds): Maven's still straddles 0.5 by a
    # wide margin on both sides, the flat example's stays far above it. The backtest runs as it would.
    params.setdefault("evaluate", {})["bootstrap_rounds"] = 100
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return load_settings(root / "params.yaml")


def _train_and_score(settings: Settings) -> tuple[IngestResult, dict, pd.DataFrame]:
    result = ingest.run(settings)
    features.run(settings)
    train.run(settings)
    metrics = evaluate.run(settings).metrics
    return result, metrics, score.run(settings)


@pytest.mark.skipif(not MAVEN.exists(), reason="shared/data/maven_crm is not beside the repository")
def test_maven_example_trains_on_won_lost_scores_open_deals_and_admits_no_signal(tmp_path, monkeypatch) -> None:
    settings = _local_settings("maven_crm", tmp_path, monkeypatch)
    result, metrics, scores = _train_and_score(settings)
    report = result.report
    assert report["primary"].rows_read == 8800 == report["primary"].rows_kept + report["primary"].rows_quarantined
    assert {n: r.rows_read for n, r in report.items()} == {"primary": 8800, "accounts": 85, "products": 7, "teams": 35}
    counts = result.records["outcome"].value_counts().to_dict()
    assert counts == {"won": 4238, "lost": 2473, "open": 2089}
    # GTXPro in the pipeline joins GTX Pro in products through the alias.
    gtx_pro = result.records["product"] == "gtx pro"
    assert gtx_pro.sum() > 0 and result.records.loc[gtx_pro, "list_price"].notna().all()
    assert "technology" in set(result.records["industry"].dropna())
    assert set(scores["record_id"]) == set(result.records.loc[result.records["outcome"] == "open", "record_id"])
    # The README of the data: about 0.52 AUC, chance level. The pipeline must say so.
    assert metrics["better_than_chance"] is False
    assert metrics["roc_auc_ci_low"] < 0.5 < metrics["roc_auc_ci_high"]
    # The signal gate stops it: recorded, not promoted, the reason in plain words; its scores say so.
    promotion = json.loads(settings.paths.promotion.read_text())
    assert promotion["promoted"] is False and promotion["champion"] is None
    signal = next(g for g in promotion["gates"] if g["gate"] == "signal")
    assert signal["passed"] is False and "not significantly better than chance" in signal["detail"]
    assert "NOT promoted" in promotion["decision"] and "signal:" in promotion["decision"]
    assert "**Promoted: no.**" in settings.paths.model_card.read_text()
    assert set(scores["model_status"]) == {"unpromoted"}
    assert not list(MAVEN.glob("*.parquet")) and sorted(p.name for p in MAVEN.iterdir()) == [
        "accounts.csv", "products.csv", "sales_pipeline.csv", "sales_teams.csv"]


def test_flat_example_trains_and_scores(tmp_path, monkeypatch) -> None:
    settings = _local_settings("flat_contacts", tmp_path, monkeypatch)
    settings = settings.model_copy(update={"generate": settings.generate.model_copy(update={"n_leads": 6000,
                                                                                          "n_accounts": 1500})})
    generate.run(settings)
    result, metrics, scores = _train_and_score(settings)
    r = result.report["primary"]
    assert r.rows_read == r.rows_kept + r.rows_quarantined and r.rows_quarantined > 0
    assert set(result.records["outcome"]) == {"won", "lost", "open"}
    assert metrics["better_than_chance"] is True and metrics["roc_auc"] > 0.75
    assert len(scores) == (result.records["outcome"] == "open").sum()
    spec = json.loads((settings.paths.features / "feature_spec.json").read_text())
    sources = {s["source"] for s in spec}
    assert "pricing_views_7d" in sources and "seniority" in {s["name"] for s in spec}


@pytest.mark.skipif(not MAVEN.exists(), reason="shared/data/maven_crm is not beside the repository")
def test_a_novice_goes_from_inspect_to_scores_with_the_unedited_draft(tmp_path, monkeypatch, capsys) -> None:

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(MAVEN / "sales_pipeline.csv", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "sales_pipeline.csv", "-q"]) == 0
    draft = yaml.safe_load((tmp_path / "sales_pipeline.source.yaml").read_text())["source"]
    assert draft["primary"]["outcome"]["column"] == "deal_stage"
    assert draft["primary"]["id"] == "opportunity_id"
    assert draft["never_use"] == {"close_date": "outcome_derived", "close_value": "outcome_derived"}
    assert main(["run", "--params", "sales_pipeline.source.yaml", "-q"]) == 0
    assert len(pd.read_csv(tmp_path / "data/scores/scores.csv")) == 2089
    assert json.loads((tmp_path / "reports/evaluation.json").read_text())["better_than_chance"] is False
