"""The score history: every scoring run of an export's open leads, kept per lead.

One run is one Parquet file, ``<history>/scored_date=<YYYY-MM-DD>/<scored_at>_<model name>.parquet``
(hive-partitioned by date; pandas, pyarrow and DuckDB read the folder as one table). A run is
written to a hidden temporary file and renamed into place, so a reader sees all of a run or none of
it, and a process killed mid-write leaves nothing that a reader picks up. The same export scored at
the same instant again replaces its run: reruns never duplicate rows.

Per lead, a run holds when it was scored and by which model, the probability, score, grade and
next step, the raw score (log-odds) with the base value, and the exact SHAP contribution of each
feature group (a map from group to log-odds, adding up with the base value to the raw score), with
the change since the lead's previous run as :mod:`pipeline.scoring.change` worded it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contracts.files import HISTORY_SUFFIX
from pipeline.errors import DataError

PARTITION = "scored_date"
SCHEMA = pa.schema([
    ("scored_at", pa.string()),
    ("record_id", pa.string()),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("registry_version", pa.string()),
    ("model_status", pa.string()),
    ("job", pa.string()),                # stage (the DVC score stage) or export (score --export)
    ("probability", pa.float64()),
    ("score", pa.int64()),
    ("grade", pa.string()),
    ("next_step", pa.string()),
    ("raw_score", pa.float64()),         # log-odds: base_value + the sum of contributions
    ("base_value", pa.float64()),
    ("contributions", pa.map_(pa.string(), pa.float64())),  # feature group -> exact SHAP, log-odds
    ("previous_score", pa.int64()),
    ("score_change", pa.int64()),
    ("trend", pa.string()),
    ("change_reason", pa.string()),
    ("company", pa.string()),            # display only (source.display), to find a lead again; never a feature
    ("contact_name", pa.string()),
    ("owner", pa.string()),
])
LATEST_COLUMNS = ["record_id", "scored_at", "model_version", "registry_version", "score", "raw_score", "base_value",
                  "contributions"]  # what a lead's previous run is read for
_STAMP = re.compile(r"^(\d{8}T\d{6}Z)_(.+)$")


def stamp(scored_at: str) -> str:
    """``2026-01-05T00:00:00Z`` -> ``20260105T000000Z`` (file names sort as times do)."""
    return pd.Timestamp(scored_at).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Run:
    scored_at: str
    path: Path


class History:
    """The runs of one export (its registered model name) in the history folder ``root``."""

    def __init__(self, root: Path, model_name: str) -> None:
        self.root, self.model_name = root, model_name

    def path_of(self, scored_at: str) -> Path:
        when = pd.Timestamp(scored_at)
        return self.root / f"{PARTITION}={when:%Y-%m-%d}" / f"{stamp(scored_at)}_{self.model_name}{HISTORY_SUFFIX}"

    def runs(self) -> list[Run]:
        """This export's runs, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob(f"{PARTITION}=*/*{HISTORY_SUFFIX}"):
            match = _STAMP.match(path.name.removesuffix(HISTORY_SUFFIX))
            if match and match.group(2) == self.model_name:
                at = pd.Timestamp(match.group(1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                found.append(Run(scored_at=at, path=path))
        return sorted(found, key=lambda r: r.scored_at)

    def before(self, scored_at: str, n: int) -> list[Run]:
        """The last ``n`` runs strictly before ``scored_at``, oldest first."""
        at = pd.Timestamp(scored_at)
        return [r for r in self.runs() if pd.Timestamp(r.scored_at) < at][-n:] if n > 0 else []

    def read_run(self, run: Run, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(run.path, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"the score history file {run.path} cannot be read ({exc}); move it away "
                            "(that run is then forgotten) and score again") from None

    def lead(self, record_id: str, *, last: int | None = None) -> pd.DataFrame:
        """One lead's rows across this export's runs, oldest first (``last``: only the newest that many)."""
        columns = ["scored_at", "model_version", "registry_version", "score", "grade", "score_change", "trend",
                   "change_reason", "next_step"]
        frames = []
        for run in self.runs():
            table = pq.read_table(run.path, columns=columns, filters=[("record_id", "=", record_id)])
            if table.num_rows:
                frames.append(table.to_pandas())
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return rows.tail(last).reset_index(drop=True) if last else rows

    def append(self, rows: pa.Table, *, scored_at: str) -> Path:
        """Write one run atomically (replacing the same instant's run of this export, if any)."""
        if rows.schema != SCHEMA:
            raise ValueError("history rows must have the history schema")
        path = self.path_of(scored_at)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(rows, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # a run killed mid-write before this one
            if not _alive(stale):
                stale.unlink(missing_ok=True)
        return path


def _alive(tmp: Path) -> bool:
    """Whether the process that is writing ``tmp`` (its pid is in the name) still runs."""
    try:
        pid = int(tmp.name.rsplit(".", 2)[-2])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass(frozen=True)
class Previous:
    """What the history knows of leads before this run: per lead, its latest earlier row (scores,
    model, raw score and contributions) and its scores over the trend window, oldest first."""

    latest: pd.DataFrame                 # index record_id: scored_at, model_version, registry_version, score,
    #                                      raw_score, base_value
    contributions: pd.DataFrame          # index record_id, one column per group: log-odds (NaN: not in that model)
    scores: pd.DataFrame                 # record_id, scored_at, score: every row of the trend window

    @classmethod
    def empty(cls) -> Previous:
        return cls(latest=pd.DataFrame(columns=["scored_at", "model_version", "registry_version", "score",
                                                "raw_score", "base_value"]).rename_axis("record_id"),
                   contributions=pd.DataFrame().rename_axis("record_id"),
                   scores=pd.DataFrame(columns=["record_id", "scored_at", "score"]))

    @classmethod
    def of(cls, history: History, *, scored_at: str, runs: int) -> Previous:
        """The last ``runs`` runs of ``history`` before ``scored_at``, newest first for each lead."""
        found = history.before(scored_at, runs)
        if not found:
            return cls.empty()
        latest, contributions, scores = [], [], []
        seen: set[str] = set()
        for run in reversed(found):  # newest first: a lead's latest row is in the first run that has it
            keys = history.read_run(run, columns=["record_id", "score"])
            ids = pd.Index(keys.column("record_id").to_numpy(zero_copy_only=False), dtype=object)
            scores.append(pd.DataFrame({"record_id": ids, "scored_at": run.scored_at,
                                        "score": keys.column("score").to_numpy(zero_copy_only=False)}))
            new = ~ids.isin(seen) if seen else np.ones(len(ids), dtype=bool)
            if not new.any():
                continue
            taken = history.read_run(run, columns=LATEST_COLUMNS).filter(pa.array(new))
            frame = taken.drop_columns(["record_id", "contributions"]).to_pandas()
            frame.index = ids[new]
            latest.append(frame)
            contributions.append(_contribution_frame(taken.column("contributions"), ids[new]))
            seen.update(ids[new])
        all_scores = pd.concat(scores, ignore_index=True).sort_values(["record_id", "scored_at"], kind="stable")
        return cls(latest=pd.concat(latest).rename_axis("record_id"),
                   contributions=pd.concat(contributions).rename_axis("record_id"),
                   scores=all_scores.reset_index(drop=True))


def _contribution_frame(column: pa.ChunkedArray, ids: pd.Index) -> pd.DataFrame:
    """A map column (group -> log-odds) as a frame: one row per lead, one column per group."""
    array = column.combine_chunks()
    values = array.items.to_numpy(zero_copy_only=False)
    offsets = array.offsets.to_numpy()
    sizes = np.diff(offsets)
    if len(array) and (sizes == sizes[0]).all() and sizes[0] > 0:  # one model's run: the same groups in each row
        first = array.keys.slice(0, int(sizes[0]))
        repeated = pa.concat_arrays([first] * len(array)) if len(array) > 1 else first
        if pc.all(pc.equal(array.keys, repeated)).as_py():
            return pd.DataFrame(values.reshape(len(array), int(sizes[0])), index=ids, columns=first.to_pylist())
    keys = array.keys.to_numpy(zero_copy_only=False).astype(object)
    row = np.repeat(np.arange(len(array)), sizes)
    long = pd.DataFrame({"row": row, "group": keys, "value": values})
    wide = long.pivot_table(index="row", columns="group", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(range(len(array)))
    wide.index = ids
    wide.columns.name = None
    return wide


def history_table(frame: pd.DataFrame, *, sources: list[str], contributions: np.ndarray) -> pa.Table:
    """The history rows of scored leads: ``frame`` holds the scalar columns; ``contributions`` is
    (leads x groups), in the order of ``sources``."""
    n = len(frame)
    offsets = pa.array(np.arange(0, (n + 1) * len(sources), len(sources), dtype=np.int32)
                       if sources else np.zeros(n + 1, dtype=np.int32))
    keys = pa.array(np.tile(np.asarray(sources, dtype=object), n) if sources else [], type=pa.string())
    items = pa.array(np.asarray(contributions, dtype=float).reshape(-1), type=pa.float64())
    mapped = pa.MapArray.from_arrays(offsets, keys, items)
    arrays = []
    for field in SCHEMA:
        if field.name == "contributions":
            arrays.append(mapped)
            continue
        if field.name not in frame:  # display columns are filled in after scoring (pipeline.scoring.display)
            arrays.append(pa.nulls(n, type=field.type))
            continue
        values = frame[field.name]
        if pa.types.is_int64(field.type):
            arrays.append(pa.array(pd.array(values, dtype="Int64"), type=pa.int64()))
        elif pa.types.is_float64(field.type):
            arrays.append(pa.array(values.to_numpy(dtype=float), type=pa.float64()))
        else:
            arrays.append(pa.array(values.astype(object).to_numpy(), type=pa.string(), from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
