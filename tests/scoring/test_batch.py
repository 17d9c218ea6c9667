"""`leadscore score --input --output`: chunked streaming, the same rows as one batch, quarantine,
atomic output, clear errors, and the drift report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.errors import DataError
from pipeline.modeling.model import load_model
from pipeline.scoring.scorer import Scorer
from tests.conftest import score_with, scorer_for

SCORED_AT = "scored_at"


def _score(small, models_dir: Path, source: Path, output: Path, **kwargs):
    return score_with(small, models_dir, source, output, **kwargs)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_chunked_scores_equal_one_batch_row_for_row(small, models_dir: Path, open_rows: pd.DataFrame, tmp_path: Path,
                                                    fmt: str) -> None:
    source = tmp_path / f"in.{fmt}"
    open_rows.to_parquet(source) if fmt == "parquet" else open_rows.to_csv(source, index=False)
    output = tmp_path / "out.parquet"
    summary = _score(small, models_dir, source, output, chunk_rows=97)  # many chunks, the last one short
    assert (summary.rows_in, summary.rows_out, summary.quarantined) == (len(open_rows), len(open_rows), 0)
    got = pd.read_parquet(output)
    whole = scorer_for(load_model(models_dir), small.settings, status="file").score(open_rows, scored_at="x",
                                                                                   detail=True)
    pd.testing.assert_frame_equal(got.drop(columns=SCORED_AT), whole.drop(columns=SCORED_AT), check_dtype=False)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_bad_rows_are_quarantined_with_their_reason(small, models_dir: Path, open_rows: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    rows = open_rows.head(50).astype({"employees": "object"})
    rows.loc[3, "record_id"] = "  "
    rows.loc[7, "employees"] = "about forty"
    source, output = tmp_path / "in.csv", tmp_path / "scores.csv"
    rows.to_csv(source, index=False)
    summary = _score(small, models_dir, source, output, chunk_rows=20)
    assert (summary.rows_in, summary.rows_out, summary.quarantined) == (50, 48, 2)
    quarantined = pd.read_csv(tmp_path / "scores.quarantine.csv")
    assert quarantined["row"].tolist() == [4, 8]  # 1-based data rows of the input
    assert quarantined["reason"].tolist() == ["missing record_id", "employees: 'about forty' is not a number"]
    assert len(pd.read_csv(output)) == 48


def test_a_missing_feature_column_fails_fast_naming_it(small, models_dir: Path, open_rows: pd.DataFrame,
                                                       tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    open_rows.drop(columns=["employees"]).to_parquet(source)
    with pytest.raises(DataError, match=r"lacks column.*employees"):
        _score(small, models_dir, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_a_failure_midway_leaves_no_output_and_keeps_the_old_file(small, models_dir: Path, open_rows: pd.DataFrame,
                                                                  tmp_path: Path, monkeypatch) -> None:
    source, output = tmp_path / "in.parquet", tmp_path / "out.csv"
    open_rows.to_parquet(source)
    output.write_text("yesterday's scores\n")
    real = Scorer.score_chunk
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(Scorer, "score_chunk", failing)
    with pytest.raises(RuntimeError, match="worker died"):
        _score(small, models_dir, source, output, chunk_rows=50)
    assert output.read_text() == "yesterday's scores\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.csv"]


def test_an_empty_batch_gives_an_empty_file_with_the_header(small, models_dir: Path, open_rows: pd.DataFrame,
                                                            tmp_path: Path) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    open_rows.head(0).to_csv(source, index=False)
    summary = _score(small, models_dir, source, output)
    assert (summary.rows_in, summary.rows_out) == (0, 0)
    header = output.read_text().splitlines()
    assert len(header) == 1 and header[0].startswith('"record_id","probability","score"')


def test_cli_exit_codes_tell_bad_input_from_a_missing_model(small, models_dir: Path, open_rows: pd.DataFrame,
                                                            tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  models: {tmp_path / 'no-models'}\n  mlflow_db: {tmp_path / 'mlflow.db'}\n")
    source = tmp_path / "in.parquet"
    open_rows.head(20).to_parquet(source)
    out = str(tmp_path / "out.csv")
    assert main(["score", "--params", str(params), "--input", str(tmp_path / "nope.csv"), "--output", out,
                 "--model", str(models_dir)]) == 3
    assert "file not found" in capsys.readouterr().err
    assert main(["score", "--params", str(params), "--input", str(source), "--output", out]) == 4
    assert "run `leadscore train` first" in capsys.readouterr().err
    assert main(["score", "--params", str(params), "--input", str(source), "--output", out,
                 "--model", str(models_dir)]) == 0
    assert len(pd.read_csv(out)) == 20


def test_drift_report_flags_a_shifted_feature_and_not_an_unshifted_batch(small, models_dir: Path,
                                                                         tmp_path: Path) -> None:
    matrix = small.features.matrix
    closed = matrix[matrix["outcome"] != "open"].reset_index(drop=True)
    source = tmp_path / "same.parquet"
    closed.to_parquet(source)  # the training population itself (and its holdout): nothing has moved
    summary = _score(small, models_dir, source, tmp_path / "same.csv", chunk_rows=500)
    report = json.loads(summary.drift_path.read_text())
    assert report["rows"] == len(closed)
    assert max(f["psi"] for f in report["features"]) < 0.1 and report["score"]["psi"] < 0.1
    assert report["act"] == [] and report["drifted"] == []

    shifted = closed.assign(employees=closed["employees"] * 8)
    shifted.to_parquet(source)
    summary = _score(small, models_dir, source, tmp_path / "shifted.csv", chunk_rows=500)
    report = json.loads(summary.drift_path.read_text())
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["employees"]["psi"] > 0.25 and by_name["employees"]["status"] == "act"
    assert "employees" in report["act"]
    assert np.isfinite(report["score"]["psi"])


def test_no_explain_gives_the_same_scores_without_reasons(small, models_dir: Path, open_rows: pd.DataFrame,
                                                          tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    open_rows.head(300).to_parquet(source)
    _score(small, models_dir, source, tmp_path / "with.csv")
    _score(small, models_dir, source, tmp_path / "without.csv", explain=False)
    with_, without = (pd.read_csv(tmp_path / n, keep_default_na=False) for n in ("with.csv", "without.csv"))
    same = ["record_id", "probability", "score", "grade", "next_step", "budget_status"]
    pd.testing.assert_frame_equal(with_[same], without[same])
    assert (with_["reason_for_1"] != "").any()
    assert (without.filter(like="reason_for_") == "").all().all() and (without["what_would_raise"] == "").all()
