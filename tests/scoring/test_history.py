"""The score history: one atomic file per run, idempotent by instant, readable by pandas and DuckDB
as one table, and never half a run, even when the writer is killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.scoring.history import SCHEMA, History, Previous, history_table

SOURCES = ["pricing_page_view", "activity", "industry"]


def _rows(ids: list[str], scored_at: str, score: list[int], *, version: str = "lgbm-aaaaaaaaaaaa",
          contributions: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(ids)
    c = contributions if contributions is not None else np.tile([0.5, -0.25, 0.125], (n, 1))
    frame = pd.DataFrame({
        "scored_at": scored_at, "record_id": ids, "model_name": "leadscore-synthetic", "model_version": version,
        "registry_version": "1", "model_status": "champion", "job": "export",
        "probability": np.asarray(score) / 100, "score": score, "grade": "B", "next_step": "nurture",
        "raw_score": -1.0 + c.sum(axis=1), "base_value": -1.0, "previous_score": pd.array([None] * n, dtype="Int64"),
        "score_change": pd.array([None] * n, dtype="Int64"), "trend": "new", "change_reason": ""})
    return frame, c


def _append(history: History, ids: list[str], scored_at: str, score: list[int], **kwargs) -> Path:
    frame, c = _rows(ids, scored_at, score, **kwargs)
    return history.append(history_table(frame, sources=SOURCES, contributions=c), scored_at=scored_at)


def test_runs_are_files_by_instant_and_a_rerun_replaces_its_own(tmp_path: Path) -> None:
    history = History(tmp_path / "history", "leadscore-synthetic")
    first = _append(history, ["a", "b"], "2026-01-05T00:00:00Z", [40, 60])
    _append(history, ["a", "b", "c"], "2026-01-06T00:00:00Z", [45, 58, 70])
    assert first == tmp_path / "history/scored_date=2026-01-05/20260105T000000Z_leadscore-synthetic.parquet"
    again = _append(history, ["a", "b"], "2026-01-05T00:00:00Z", [41, 61])  # the same instant: replaced
    assert again == first
    table = pd.read_parquet(tmp_path / "history")
    assert len(table) == 5 and sorted(table.groupby("scored_at").size().tolist()) == [2, 3]
    assert table.loc[table["scored_at"] == "2026-01-05T00:00:00Z", "score"].tolist() == [41, 61]
    assert {c: str(t) for c, t in zip(SCHEMA.names, SCHEMA.types, strict=True)}["contributions"] == \
        "map<string, double>"
    # Another export's runs in the same folder are not this export's.
    _append(History(tmp_path / "history", "leadscore-other"), ["z"], "2026-01-07T00:00:00Z", [10])
    assert [r.scored_at for r in history.runs()] == ["2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"]
    assert history.lead("a")["score"].tolist() == [41, 45]


def test_previous_takes_each_leads_latest_row_and_the_trend_window(tmp_path: Path) -> None:
    history = History(tmp_path / "history", "leadscore-synthetic")
    _append(history, ["a", "b"], "2026-01-01T00:00:00Z", [40, 60])
    _append(history, ["a"], "2026-01-02T00:00:00Z", [50], contributions=np.array([[1.0, 2.0, 3.0]]))
    _append(history, ["a", "b"], "2026-01-09T00:00:00Z", [99, 99])  # later than the run being scored
    previous = Previous.of(history, scored_at="2026-01-03T00:00:00Z", runs=4)
    assert previous.latest.loc["a", "score"] == 50 and previous.latest.loc["b", "score"] == 60
    assert previous.contributions.loc["a"].tolist() == [1.0, 2.0, 3.0]
    assert previous.contributions.loc["b", "pricing_page_view"] == 0.5
    assert previous.scores.query("record_id == 'a'")["score"].tolist() == [40, 50]
    assert Previous.of(history, scored_at="2026-01-01T00:00:00Z", runs=4).latest.empty


def test_the_documented_duckdb_query_reads_the_history(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    history = History(tmp_path / "history", "leadscore-synthetic")
    _append(history, ["a", "b"], "2026-01-05T00:00:00Z", [40, 60])
    _append(history, ["a", "b"], "2026-01-06T00:00:00Z", [45, 58])
    docs = (Path(__file__).resolve().parents[2] / "docs/nightly.md").read_text()
    query = docs.split("```sql\n", 1)[1].split("```", 1)[0].replace("data/history", str(tmp_path / "history"))
    rows = duckdb.sql(query).fetchall()
    assert rows[0][:3] == ("a", "2026-01-06T00:00:00Z", 45) and len(rows) == 2


def test_a_run_killed_mid_write_leaves_the_history_readable_without_it(tmp_path: Path) -> None:
    root = tmp_path / "history"
    history = History(root, "leadscore-synthetic")
    _append(history, ["a", "b"], "2026-01-05T00:00:00Z", [40, 60])
    # A writer that is killed (SIGKILL, as the OOM killer or `kill -9` does) after writing part of its file.
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np, pandas as pd, pyarrow.parquet as pq
        from pathlib import Path
        from pipeline.scoring.history import History, history_table
        real = pq.write_table
        def dying(table, where, **kwargs):
            with open(where, "wb") as fh:
                fh.write(b"PAR1" + b"x" * 5000)
                fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        pq.write_table = dying
        import tests.scoring.test_history as t
        frame, c = t._rows(["a", "b", "c"] * 1000, "2026-01-06T00:00:00Z", [1, 2, 3] * 1000)
        History(Path({str(root)!r}), "leadscore-synthetic").append(
            history_table(frame, sources=t.SOURCES, contributions=c), scored_at="2026-01-06T00:00:00Z")
    """)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    leftovers = list(root.rglob(".*.tmp"))
    assert len(leftovers) == 1  # the dead writer's partial file, hidden
    table = pd.read_parquet(root)
    assert len(table) == 2 and set(table["scored_at"]) == {"2026-01-05T00:00:00Z"}
    assert [r.scored_at for r in history.runs()] == ["2026-01-05T00:00:00Z"]
    # The next run of that instant writes it whole and clears the dead writer's leftover.
    _append(history, ["a", "b", "c"], "2026-01-06T00:00:00Z", [1, 2, 3])
    assert not list(root.rglob(".*.tmp")) and len(pd.read_parquet(root)) == 5
