"""Hardening: a scoring run killed with SIGKILL leaves nothing at the output path and a rerun is
byte-identical; CRM strings are neutralised in CSV and escaped in HTML; PII never becomes a feature;
and a corpus of bad scoring and config inputs, each ending in a clear error or a quarantined row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.data.ingest import ingest
from pipeline.errors import ConfigError, DataError, ModelError
from pipeline.io.tables import spreadsheet_safe
from pipeline.modeling.model import load_model
from pipeline.reporting.board import render_board_html
from pipeline.stages.features import featurise
from pipeline.stages.score import run_batch
from tests.conftest import REPO, score_with

STAMP = "2026-01-31T02:00:00Z"


def _score(small, models_dir: Path, source: Path, output: Path, **kwargs):
    return score_with(small, models_dir, source, output, scored_at=STAMP, **kwargs)


# ---------------------------------------------------------------- crash safety


def test_sigkill_midway_leaves_no_output_and_a_rerun_is_byte_identical(small, models_dir: Path, open_rows: pd.DataFrame,
                                                                        tmp_path: Path) -> None:
    big = pd.concat([open_rows] * 8, ignore_index=True).assign(record_id=lambda f: [f"K{i:06d}" for i in range(len(f))])
    source, output, reference = tmp_path / "in.parquet", tmp_path / "out" / "scores.csv", tmp_path / "ref.csv"
    big.to_parquet(source, row_group_size=100)
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  mlflow_db: {tmp_path / 'mlflow.db'}\n")
    _score(small, models_dir, source, reference, chunk_rows=100)
    cmd = [sys.executable, "-m", "pipeline.cli", "score", "--params", str(params), "--input", str(source),
           "--output", str(output), "--model", str(models_dir), "--chunk-rows", "100", "--scored-at", STAMP]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:  # kill it once half a file is written
        partial = [p for p in output.parent.glob(".scores.csv.*.tmp") if p.stat().st_size > 200_000]
        if partial:
            break
        time.sleep(0.05)
    assert partial and proc.poll() is None, "the run ended before it could be killed midway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not output.exists()  # nothing at the output path: the partial file is a hidden temporary
    assert main(["score", "-q", *cmd[4:]]) == 0  # the rerun (it also clears the dead run's temporary)
    assert output.read_bytes() == reference.read_bytes()
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.csv", "scores.drift.json",
                                                               "scores.manifest.json"]


# ---------------------------------------------------------------- injection


FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]


def test_formulas_in_crm_strings_are_neutralised_in_csv_and_kept_in_parquet(small, models_dir: Path,
                                                                            open_rows, tmp_path: Path) -> None:
    hostile = open_rows.head(len(FORMULAS)).assign(record_id=FORMULAS)
    source = tmp_path / "in.parquet"
    hostile.to_parquet(source)
    _score(small, models_dir, source, tmp_path / "out.csv")
    _score(small, models_dir, source, tmp_path / "out.parquet")
    csv = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert csv["record_id"].tolist() == ["'" + f for f in FORMULAS]
    assert pd.read_parquet(tmp_path / "out.parquet")["record_id"].tolist() == FORMULAS
    for column in csv.columns:  # no cell of the CSV starts like a formula
        assert not csv[column].astype(str).str.match(r"^[=+\-@\t\r]").any(), column


def test_spreadsheet_safe_leaves_numbers_and_plain_text_alone() -> None:
    frame = pd.DataFrame({"n": [-1.5, 2.0], "t": ["-x", "ok"], "s": pd.Series(["@a", None], dtype="str")})
    safe = spreadsheet_safe(frame)
    assert safe["n"].tolist() == [-1.5, 2.0]
    assert safe["t"].tolist() == ["'-x", "ok"]
    assert safe["s"].iloc[0] == "'@a" and pd.isna(safe["s"].iloc[1])
    assert frame["t"].tolist() == ["-x", "ok"]  # the caller's frame is not changed


def test_crm_strings_are_escaped_in_the_lead_board(small, models_dir: Path, open_rows: pd.DataFrame,
                                                   tmp_path: Path) -> None:
    hostile = open_rows.head(2).assign(record_id=["<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>"])
    source = tmp_path / "in.parquet"
    hostile.to_parquet(source)
    _score(small, models_dir, source, tmp_path / "out.parquet")
    scores = pd.read_parquet(tmp_path / "out.parquet")
    html = render_board_html(scores.assign(what_would_raise=scores["what_would_raise_detail"]))
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------- PII


def test_declared_and_inspected_pii_never_reaches_the_feature_matrix(tmp_path: Path) -> None:
    from pipeline.data.inspect import run as inspect

    rng = np.random.default_rng(3)
    n = 400
    export = pd.DataFrame({
        "Lead ID": [f"L{i}" for i in range(n)],
        "Email": [f"person{i}@example.com" for i in range(n)],
        "Phone Number": [f"+1 555 01{i:04d}" for i in range(n)],
        "Contact": [f"Person {i}" for i in range(n)],
        "Employees": rng.integers(5, 5000, n),
        "Industry": rng.choice(["Software", "Retail", "Healthcare"], n),
        "Converted": rng.integers(0, 2, n),
    })
    path = tmp_path / "leads.csv"
    export.to_csv(path, index=False)
    draft = tmp_path / "draft.yaml"
    inspect(path, output=draft, delimiter=None, encoding=None)
    text = draft.read_text()
    params = tmp_path / "params.yaml"
    params.write_text(text + "\nfeatures: {scoring_date: 2026-01-01}\n")
    settings = load_settings(params)
    never = settings.source.never_use
    assert {"Email", "Phone Number"} <= {c for c, why in never.items() if why == "pii"}
    result = ingest(settings.source)
    features = featurise(result.records, result.events, result.fields, settings=settings)
    matrix = features.matrix
    assert not {s.source for s in features.specs} & {"email", "phone_number", "Email", "Phone Number"}
    for column in matrix.columns:
        values = matrix[column].astype(str)
        assert not values.str.contains("@example.com").any(), column
        assert not values.str.contains("555 01").any(), column


# ---------------------------------------------------------------- bad scoring and config inputs


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_truncated_csv_scores_the_complete_rows_and_quarantines_the_cut_one(small, models_dir: Path,
                                                                            open_rows, tmp_path: Path) -> None:
    text = open_rows.head(20).to_csv(index=False)
    cut = text[: text.rstrip("\n").rfind("\n") + 15]  # the last line cut after 15 characters
    summary = _score(small, models_dir, _write(tmp_path / "cut.csv", cut), tmp_path / "out.csv")
    assert summary.rows_in == 20 and summary.rows_out + summary.quarantined == 20
    assert summary.rows_out >= 19


def test_binary_garbage_as_scoring_input_fails_fast(small, models_dir: Path, tmp_path: Path) -> None:
    garbage = _write(tmp_path / "in.csv", bytes(range(256)) * 64)
    with pytest.raises(DataError, match="binary"):
        _score(small, models_dir, garbage, tmp_path / "out.csv")


def test_a_parquet_file_that_is_not_parquet_fails_fast(small, models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a readable Parquet"):
        _score(small, models_dir, _write(tmp_path / "in.parquet", "record_id\nA\n"), tmp_path / "out.csv")


def test_a_10mb_cell_is_scored_not_a_crash(small, models_dir: Path, open_rows: pd.DataFrame, tmp_path: Path) -> None:
    huge = open_rows.head(3).astype({"fw_budget_reason": "object"})
    huge.loc[1, "fw_budget_reason"] = "x" * 10_000_000
    source = tmp_path / "in.csv"
    huge.to_csv(source, index=False)
    summary = _score(small, models_dir, source, tmp_path / "out.csv")
    assert (summary.rows_out, summary.quarantined) == (3, 0)


def test_unicode_headers_and_values_round_trip(small, models_dir: Path, open_rows, tmp_path: Path) -> None:
    extra = open_rows.head(5).assign(**{"Société – 名前": "ünïcödé"}, record_id=["Ä1", "名2", "ç3", "ø4", "🙂5"])
    source = tmp_path / "in.csv"
    extra.to_csv(source, index=False, encoding="utf-8")
    _score(small, models_dir, source, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv")["record_id"].tolist() == ["Ä1", "名2", "ç3", "ø4", "🙂5"]


def test_negative_nan_and_infinite_numbers_are_scored_as_given(small, models_dir: Path, open_rows: pd.DataFrame,
                                                               tmp_path: Path) -> None:
    odd = open_rows.head(4).copy()
    odd["employees"] = [-50.0, np.nan, np.inf, -np.inf]
    source = tmp_path / "in.parquet"
    odd.to_parquet(source)
    summary = _score(small, models_dir, source, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert summary.rows_out == 4 and out["score"].between(0, 100).all()


def test_as_of_dates_in_the_future_or_unparseable_do_not_stop_scoring(small, models_dir: Path, open_rows: pd.DataFrame,
                                                                      tmp_path: Path) -> None:
    odd = open_rows.head(3).astype({"as_of": "object"})
    odd["as_of"] = ["2999-01-01", "not a date", None]
    source = tmp_path / "in.csv"
    odd.to_csv(source, index=False)
    _score(small, models_dir, source, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["as_of"].tolist() == ["2999-01-01", "", ""]


def test_ids_that_collide_after_trimming_are_quarantined_at_ingest(tmp_path: Path) -> None:
    from tests.data.test_ingest import ROWS, run_flat
    from tests.data.test_malformed_inputs import _reasons

    result = run_flat(tmp_path, [*ROWS, " 2 ,Won,2024-04-01,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "duplicate id (first at line 3)"


def test_a_model_from_another_feature_spec_is_refused(small, models_dir: Path, open_rows: pd.DataFrame,
                                                      tmp_path: Path) -> None:
    other = open_rows.drop(columns=[s.name for s in load_model(models_dir).specs][:3])
    source = tmp_path / "in.parquet"
    other.to_parquet(source)
    with pytest.raises(DataError, match="lacks column"):
        _score(small, models_dir, source, tmp_path / "out.csv")
    meta = (models_dir / "model_meta.json").read_text()
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "model.txt").write_bytes((models_dir / "model.txt").read_bytes())
    (tampered / "model_meta.json").write_text(meta.replace('"name": "employees"', '"name": "staff"'))
    with pytest.raises(ModelError, match="feature spec"):
        load_model(tampered)


def test_unknown_output_type_and_missing_model_folder(small, models_dir: Path, open_rows: pd.DataFrame,
                                                      tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    open_rows.head(3).to_parquet(source)
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        _score(small, models_dir, source, tmp_path / "out.xlsx")
    with pytest.raises(ModelError):
        run_batch(small.settings, input_path=source, output_path=tmp_path / "o.csv", model_name=str(tmp_path / "x"))


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("score:\n  chunk_row: 10\n", "score.chunk_row: unknown key"),
    ("drift:\n  watch: 0.3\n  act: 0.2\n", "act must be above watch"),
    ("score:\n  shap: fast\n", "score.shap"),
    ("score:\n  chunk_rows: 0\n", "score.chunk_rows"),
    ("score: [1, 2]\n", "score"),
    ("train:\n  num_leaves: many\n", "train.num_leaves"),
    ("seed: 42\n  bad indent: 1\n", "params"),
])
def test_bad_params_files_name_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = _write(tmp_path / "params.yaml", yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_cli_bad_scored_at_and_lone_input_are_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["score", "--input", "x.csv", "--output", "y.csv", "--scored-at", "yesterday"]) == 2
    assert "not an ISO timestamp" in capsys.readouterr().err
    assert main(["score", "--input", "x.csv"]) == 2
    assert "go together" in capsys.readouterr().err



@pytest.mark.parametrize("options", [["--model", "3"], ["--chunk-rows", "10"], ["--workers", "4"]])
def test_cli_batch_options_without_input_are_refused_not_ignored(options: list[str], capsys) -> None:
    # Without --input/--output, `leadscore score` is the DVC stage: an option meant for a batch run
    # would otherwise be ignored silently (the stage would score with the champion).
    assert main(["score", *options]) == 2
    err = capsys.readouterr().err
    assert options[0] in err and "only apply with --input and --output" in err


def test_cli_chunk_rows_with_the_dask_engine_is_refused(capsys) -> None:
    assert main(["score", "--input", "x.parquet", "--output", "y.parquet", "--engine", "dask",
                 "--chunk-rows", "10"]) == 2
    assert "--chunk-rows applies to --engine local" in capsys.readouterr().err
