"""The nightly job, replayed: the synthetic world exported at successive dates, each export scored
raw by `leadscore score --export` with the champion trained on the first, into one score history.
A demo request planted between two nights must be named as the main cause of that lead's rise."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, timedelta
from io import StringIO
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from pipeline.cli import main
from pipeline.config import GenerateParams, read_settings
from pipeline.data.generate import generate, write_export
from pipeline.reporting.lead_card import lead_card
from pipeline.scoring.change import ADDITIVITY_TOLERANCE, CHANGE_COLUMNS
from pipeline.scoring.history import History
from tests.conftest import REPO

pytestmark = pytest.mark.slow

WORLD_END = date(2026, 6, 30)
NIGHTS = [date(2025, 12, 31), date(2026, 1, 14), date(2026, 1, 28)]
SIZE = {"n_leads": 2500, "n_accounts": 700}
NEXT = "2026-01-29T02:00:00Z"  # the night after the third, scored with a new champion


def _export(folder: Path, night: date) -> Path:
    params = GenerateParams(**SIZE, export_date=night, world_end_date=WORLD_END)
    write_export(generate(params=params, seed=42), raw_dir=folder, truth_dir=folder.parent / f"truth-{night}")
    return folder


def _stamp(night: date) -> str:
    return f"{night:%Y-%m-%d}T00:00:00Z"  # the export's own date: midnight after its latest event


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("nightly")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(**SIZE, export_date=str(NIGHTS[0]), world_end_date=str(WORLD_END))
    params["gates"]["must_beat_baselines"] = False  # a small export: this test is about the nightly job
    params["evaluate"]["backtest_windows"] = 0
    params["evaluate"]["bootstrap_rounds"] = 100
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    settings = read_settings(params_path).resolve(root)

    def cli(*args: str) -> None:
        assert main([*args, "-q", "--params", str(params_path)]) == 0

    cwd = Path.cwd()
    os.chdir(root)
    try:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        cli("run")  # night 1 through the stages (what `dvc repro` runs): train, promote, score
        stage_csv = (root / "data/scores/scores.csv").read_bytes()
        cli("score", "--export", "data/raw", "--output", "out/night1.csv")
        second = _export(root / "exports/night2", NIGHTS[1])
        cli("score", "--export", str(second), "--output", "out/night2.parquet")
        third = _export(root / "exports/night3", NIGHTS[2])
        # The planted event: a lead open on both nights, low-scored, with no demo request yet, asks for one
        # two days before the third export.
        night2 = pd.read_parquet(root / "out/night2.parquet")
        events = pd.read_csv(third / "events.csv", dtype=str, keep_default_na=False)
        deals = pd.read_csv(third / "deals.csv", dtype=str, keep_default_na=False)
        open3 = set(deals.loc[deals["stage"].isin(["Qualification", "Discovery", "Proposal", "Negotiation"]),
                              "deal_id"])
        asked = set(events.loc[events["event_type"] == "Demo Request", "lead_id"])
        lead_of = deals.drop_duplicates("deal_id", keep="last").set_index("deal_id")["lead_id"]
        night1 = pd.read_csv(root / "out/night1.csv", usecols=["record_id"])["record_id"]
        candidates = night2[night2["record_id"].isin(open3) & night2["record_id"].isin(night1) & (night2["score"] < 40)
                            & ~night2["record_id"].map(lead_of).isin(asked)]
        planted = candidates.sort_values("record_id").iloc[0]["record_id"]
        when = NIGHTS[2] - timedelta(days=2)
        extra = pd.DataFrame({"event_id": [str(10**9 + i) for i in range(2)], "lead_id": lead_of[planted],
                              "event_type": "Demo Request", "timestamp": [f"{when} 10:00:00", f"{when} 15:30:00"]})
        pd.concat([events, extra], ignore_index=True).to_csv(third / "events.csv", index=False)
        # An export of only the open deals (with their leads, accounts and activity) scores too.
        only_open = root / "exports/night3-open"
        only_open.mkdir(parents=True)
        for name in ("leads", "accounts", "events"):
            (only_open / f"{name}.csv").write_bytes((third / f"{name}.csv").read_bytes())
        deals[deals["deal_id"].isin(open3)].to_csv(only_open / "deals.csv", index=False)
        cli("score", "--export", str(only_open), "--output", "out/night3-open.csv", "--scored-at", _stamp(NIGHTS[2]))
        cli("score", "--export", str(third), "--output", "out/night3.parquet")
        runs_before_rerun = [r.path.stat().st_size for r in History(settings.paths.history,
                                                                    "leadscore-synthetic").runs()]
        cli("score", "--export", str(third), "--output", "out/night3-again.csv", "--scored-at", _stamp(NIGHTS[2]))
        three_nights = root / "history-3-nights"
        shutil.copytree(settings.paths.history, three_nights)
        # A new champion (retrained with other params, made champion by hand) scores the next night: each
        # change splits into the new model's part and the lead's own.
        params["train"].update(num_leaves=8, learning_rate=0.1)
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        cli("train")
        cli("rollback", "--to", "2")
        cli("score", "--export", str(third), "--output", "out/night4.parquet", "--scored-at", NEXT)
    finally:
        os.chdir(cwd)
    return {"root": root, "history": three_nights, "stage_csv": stage_csv, "planted": planted, "open3": open3,
            "runs_before_rerun": runs_before_rerun}


def test_the_raw_export_job_scores_as_the_stage_does(nights) -> None:
    root = nights["root"]
    assert (root / "out/night1.csv").read_bytes() == nights["stage_csv"]
    # Only the open records are scored; an export of only open leads gives the same scores, byte for byte.
    night3 = pd.read_csv(root / "out/night3-again.csv", dtype={"registry_version": str})
    assert set(night3["record_id"]) <= nights["open3"] and len(night3) > 100
    assert (root / "out/night3-open.csv").read_bytes() == (root / "out/night3-again.csv").read_bytes()
    assert set(night3["model_status"]) == {"champion"} and set(night3["registry_version"]) == {"1"}
    assert (root / "out/night2.drift.json").exists()


def test_three_nights_give_three_rows_per_lead_and_a_rerun_adds_none(nights) -> None:
    history = History(nights["history"], "leadscore-synthetic")
    runs = history.runs()
    assert [r.scored_at for r in runs] == [_stamp(n) for n in NIGHTS]
    assert [r.path.stat().st_size for r in runs] == nights["runs_before_rerun"]
    table = pd.read_parquet(nights["history"])
    assert not table.duplicated(["scored_at", "record_id"]).any()
    per_lead = table.groupby("record_id")["scored_at"].nunique()
    always_open = set.intersection(*(set(table.loc[table["scored_at"] == r.scored_at, "record_id"]) for r in runs))
    assert len(always_open) > 50 and (per_lead[sorted(always_open)] == 3).all()
    assert set(table["job"]) == {"export"}  # night 1's stage run was replaced by the job at the same instant


def test_every_change_adds_up_exactly(nights) -> None:
    history = History(nights["history"], "leadscore-synthetic")
    runs = [history.read_run(r).to_pandas().set_index("record_id") for r in history.runs()]
    for before, after in pairwise(runs):
        both = before.index.intersection(after.index)

        def groups(frame: pd.DataFrame, ids: pd.Index = both) -> pd.DataFrame:
            return pd.DataFrame([dict(m) for m in frame.loc[ids, "contributions"]], index=ids)

        delta = (groups(after) - groups(before)).sum(axis=1)
        raw = after.loc[both, "raw_score"] - before.loc[both, "raw_score"]
        assert np.abs(delta - raw).max() <= ADDITIVITY_TOLERANCE
        moved = after.loc[both]
        assert (moved["score_change"] == moved["score"] - before.loc[both, "score"]).all()
        assert (moved["previous_score"] == before.loc[both, "score"]).all()


def test_the_planted_demo_request_is_named_as_the_main_cause(nights) -> None:
    root, planted = nights["root"], nights["planted"]
    night3 = pd.read_parquet(root / "out/night3.parquet").set_index("record_id")
    lead = night3.loc[planted]
    assert int(lead["score_change"]) > 0
    detail = json.loads(lead["change_detail"])
    assert detail["groups"][0]["group"] == "Demo requests" and not detail["model_changed"]
    assert lead["change_reason"].startswith(f"{int(lead['previous_score'])} \u2192 {int(lead['score'])} since "
                                            f"{_stamp(NIGHTS[1])[:10]}: Demo requests +")
    # explain shows the lead's history: three runs.
    rows = History(nights["history"], "leadscore-synthetic").lead(planted)
    assert len(rows) == 3
    out = StringIO()
    Console(file=out, width=160).print(lead_card(night3.loc[[planted]].reset_index().iloc[0], history=rows))
    text = out.getvalue()
    assert "Score history (last 3 runs)" in text and "Demo requests +" in text


def test_a_new_champion_splits_each_change_into_the_models_part_and_the_leads_own(nights) -> None:
    night4 = pd.read_parquet(nights["root"] / "out/night4.parquet")
    assert set(night4["registry_version"]) == {"2"}
    details = [json.loads(d) for d in night4["change_detail"]]
    assert details and all(d["model_changed"] for d in details)
    assert all(d["model_points"] + d["data_points"] == d["to"] - d["from"] for d in details)
    old = night4["model_version"].iloc[0]
    assert night4["change_reason"].str.contains(f"new model {old} \\(was lgbm-").all()
    assert any(d["data_points"] != 0 for d in details)  # a day later: the lead's own part moved some
    assert not night4["change_reason"].str.contains("cannot be told apart").any()


def _quiet_params(root: Path, **edits: dict) -> Path:
    """The nightly project's params with the history off (these runs must not enter it) and ``edits``."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["history"]["enabled"] = False
    for section, values in edits.items():
        params[section].update(values)
    path = root / "quiet.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _score(root: Path, params: Path, *args: str) -> int:
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return main(["score", "-q", "--params", str(params), *args])
    finally:
        os.chdir(cwd)


def test_params_edits_since_training_do_not_change_the_features(nights) -> None:
    root = nights["root"]
    edited = _quiet_params(root, features={"event_windows_days": [14], "max_event_types": 2},
                           icp={"industries": ["retail"]}, qualification={"framework": "meddic"})
    assert _score(root, edited, "--export", "exports/night3", "--output", "out/edited.csv", "--model", "1") == 0
    ours = pd.read_csv(root / "out/edited.csv", keep_default_na=False).drop(columns=CHANGE_COLUMNS)
    before = pd.read_csv(root / "out/night3-again.csv", keep_default_na=False).drop(columns=CHANGE_COLUMNS)
    pd.testing.assert_frame_equal(ours.drop(columns="model_status"), before.drop(columns="model_status"))


def test_an_export_with_no_open_lead_writes_an_empty_file_and_counts_the_closed(nights, capsys) -> None:
    root = nights["root"]
    closed = root / "exports/closed-only"
    closed.mkdir()
    for name in ("leads", "accounts", "events"):
        (closed / f"{name}.csv").write_bytes((root / f"exports/night3/{name}.csv").read_bytes())
    deals = pd.read_csv(root / "exports/night3/deals.csv", dtype=str, keep_default_na=False)
    deals[deals["stage"].str.startswith("Closed")].to_csv(closed / "deals.csv", index=False)
    assert _score(root, _quiet_params(root), "--export", str(closed), "--output", "out/none.csv") == 0
    assert "scored 0 open leads" in capsys.readouterr().out
    written = pd.read_csv(root / "out/none.csv")
    assert written.empty and "score" in written.columns and "change_reason" in written.columns


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--export", "exports/nowhere", "--output", "out/x.csv"], 3, "exports/nowhere: no such folder"),
    (["--export", "exports/night3"], 2, "--export needs --output"),
    (["--export", "exports/night3", "--output", "out/x.csv", "--scored-at", "last tuesday"], 2,
     "is not a date or time"),
    (["--export", "exports/night3", "--output", "out/x.xlsx"], 3, "unknown file type"),
    (["--export", "exports/night3", "--input", "x.parquet", "--output", "out/x.csv"], 2, "takes no --input"),
])
def test_bad_export_job_arguments_fail_fast_with_the_reason(nights, capsys, args, code, message) -> None:
    assert _score(nights["root"], _quiet_params(nights["root"]), *args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_broken_export_or_a_model_without_its_recipe_is_refused(nights, capsys) -> None:
    root = nights["root"]
    broken = root / "exports/no-deals"
    shutil.copytree(root / "exports/night3", broken)
    (broken / "deals.csv").unlink()
    assert _score(root, _quiet_params(root), "--export", str(broken), "--output", "out/x.csv") == 3
    assert "deals.csv" in capsys.readouterr().err
    old = root / "old-model"
    shutil.copytree(root / "models", old)
    meta = json.loads((old / "model_meta.json").read_text())
    meta.pop("recipe")  # as a model trained before models carried their recipe
    (old / "model_meta.json").write_text(json.dumps(meta))
    assert _score(root, _quiet_params(root), "--export", "exports/night3", "--output", "out/x.csv",
                  "--model", str(old)) == 4
    assert "was trained before models carried the mapping" in capsys.readouterr().err
