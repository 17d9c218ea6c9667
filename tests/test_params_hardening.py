"""Issue 18 class 7 rule: bad paths and inputs are refused up front, before any scoring work, with
one shared check; YAML is loaded within bounds (no alias bomb, no huge file) and an error message
quotes user input only up to a bounded length."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import read_settings
from pipeline.errors import ConfigError
from pipeline.io.files import SHOWN_CHARS, YAML_MAX_BYTES, cut, load_yaml


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nscore:\n  chunk_rows: *a{levels}\n"


def test_a_billion_laughs_params_file_is_refused_at_once_naming_the_file(tmp_path: Path) -> None:
    """class 7 rule: alias expansion beyond a bound is refused, fast, with a short message naming the file."""
    path = tmp_path / "params.yaml"
    path.write_text(_bomb())
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_settings(path)
    assert time.monotonic() - started < 2
    assert str(path) in str(caught.value) and "alias" in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    """class 7 rule: a YAML file with more aliases than the limit is refused (any YAML the CLI reads)."""
    path = tmp_path / "rules.yaml"
    path.write_text("x: &x 1\ny: [" + ", ".join(["*x"] * 500) + "]\n")
    with pytest.raises(ConfigError, match="aliases"):
        load_yaml(path)


def test_an_oversized_yaml_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    """class 7 rule: a file-size cap on every YAML the CLI reads."""
    path = tmp_path / "params.yaml"
    path.write_text("# pad\n" * (YAML_MAX_BYTES // 6 + 10))
    with pytest.raises(ConfigError, match="at most"):
        read_settings(path)


def test_a_huge_bad_params_value_is_quoted_truncated(tmp_path: Path) -> None:
    """class 7 rule: an error message that quotes user input is bounded."""
    path = tmp_path / "params.yaml"
    path.write_text("score:\n  chunk_rows: '" + "x" * 50_000 + "'\n")
    with pytest.raises(ConfigError) as caught:
        read_settings(path)
    assert "…" in str(caught.value) and len(str(caught.value)) < 2000


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=2000))
def test_quoted_input_never_exceeds_the_bound(text: str) -> None:
    """class 7 rule (property): cut() keeps short input as is and bounds long input, marked with …."""
    shown = cut(text)
    assert len(shown) <= SHOWN_CHARS
    assert shown == text or (shown.endswith("…") and text.startswith(shown[:-1]))


def _cli_score(tmp_path: Path, source: Path, output: str | Path) -> int:
    # a model folder that does not exist: a check that ran after any work would fail with exit 4
    return main(["score", "--params", str(tmp_path / "params.yaml"), "--input", str(source), "--output", str(output),
                 "--model", str(tmp_path / "no-model"), "-q"])


def _linked(source: Path, link: Path, *, symbolic: bool) -> Path:
    if symbolic:
        link.symlink_to(source)
    else:
        os.link(source, link)
    return link


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(f"paths:\n  mlflow_db: {tmp_path / 'mlflow.db'}\n")
    path = tmp_path / "in.csv"
    path.write_text("record_id,x\n1,2\n")
    return path


@pytest.mark.parametrize(("make_output", "code", "message"), [
    (lambda t, s: t, 2, "is a folder"),
    (lambda t, s: s, 2, "is the input"),
    (lambda t, s: t / "sub" / ".." / "in.csv", 2, "is the input"),
    (lambda t, s: _linked(s, t / "link.csv", symbolic=True), 2, "is the input"),
    (lambda t, s: _linked(s, t / "hard.csv", symbolic=False), 2, "is the input"),
    (lambda t, s: t / "out.xlsx", 3, "unknown file type"),
    (lambda t, s: t / "out.parquet.gz", 3, "unknown file type"),
    (lambda t, s: s / "out.csv", 2, "is a file, not a folder"),
], ids=["folder", "same-file", "other-spelling", "symlink", "hard-link", "xlsx", "parquet-gz", "under-a-file"])
def test_bad_output_paths_are_refused_before_any_work(tmp_path: Path, source: Path, capsys, make_output, code,
                                                       message) -> None:
    """class 7 rule: --output a folder, the input under any spelling, an unknown type or an impossible
    folder is refused up front, and the input is untouched."""
    (tmp_path / "sub").mkdir()
    before = source.read_bytes()
    assert _cli_score(tmp_path, source, make_output(tmp_path, source)) == code
    assert message in capsys.readouterr().err
    assert source.read_bytes() == before


def test_a_fifo_input_is_refused_instead_of_hanging(tmp_path: Path, source: Path, capsys) -> None:
    """class 7 rule: --input that is not a regular file (FIFO, device) is refused by stat."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert _cli_score(tmp_path, fifo, tmp_path / "out.csv") == 3
    assert "not a regular file" in capsys.readouterr().err
    assert _cli_score(tmp_path, Path("/dev/zero"), tmp_path / "out.csv") == 3


def test_inspect_and_export_share_the_path_checks(tmp_path: Path, source: Path, capsys) -> None:
    """class 7 rule: every command that writes outputs uses the same checks (inspect, score --export)."""
    (tmp_path / "link.yaml").symlink_to(source)
    assert main(["inspect", str(source), "--output", str(tmp_path / "link.yaml"), "-q"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["inspect", str(source), "--output", str(tmp_path / "draft.txt"), "-q"]) == 3
    assert main(["score", "--params", str(tmp_path / "params.yaml"), "--export", str(tmp_path), "--output",
                 str(tmp_path), "-q"]) == 2
    assert "is a folder" in capsys.readouterr().err
