"""The command line: every stage a command with help, and the exit codes that tell bad params, input and model apart."""

from pathlib import Path

import pytest

from pipeline.cli import STAGES, build_parser, main


def test_every_stage_is_a_command_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for stage in STAGES:
        assert stage in out


def test_bad_params_exit_2_naming_the_key_without_a_traceback(tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  num_leafs: 31\n")
    assert main(["train", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "train.num_leafs: unknown key (did you mean 'num_leaves'?)" in err
    assert "Traceback" not in err


def test_missing_input_exits_3_and_says_what_to_run(tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  interim: {tmp_path / 'nowhere'}\n")
    assert main(["features", "--params", str(params)]) == 3
    assert "run `leadscore ingest` first" in capsys.readouterr().err


def test_missing_model_exits_4(tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  models: {tmp_path / 'none'}\n  mlflow_db: {tmp_path / 'mlflow.db'}\n")
    assert main(["score", "--params", str(params)]) == 4  # no champion in the registry, no trained model
    assert "run `leadscore train` first" in capsys.readouterr().err
