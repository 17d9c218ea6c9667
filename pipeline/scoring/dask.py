"""Scoring on a Dask cluster: the same :class:`Scorer` as the local engine, one partition at a time.

A LocalCluster on this machine by default, or an existing scheduler (``--scheduler
tcp://host:8786``); its workers need leadscore installed (``pip install 'leadscore[dask]'``). The
model (LightGBM text plus JSON metadata, no pickle) is shipped once per worker with a worker
plugin, and a scorer is built there once; each partition is scored by :meth:`Scorer.score_chunk`.
The client gathers the scored partitions in order, a few at a time, and appends them to one
output file, so the output equals the local engine's row for row.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import WorkerPlugin

from pipeline.config import DriftParams, ScoreParams
from pipeline.contracts.model import parse_model_meta
from pipeline.errors import ModelError
from pipeline.io.cluster import close_client, dask_client
from pipeline.io.tables import ChunkWriter, table_format
from pipeline.modeling.drift import DriftCounter
from pipeline.modeling.model import model_from_bytes
from pipeline.runtime import progress_bar
from pipeline.scoring.batch import Batch, BatchSummary
from pipeline.scoring.scorer import Scorer

log = logging.getLogger(__name__)

_SCORERS: dict[str, Scorer] = {}  # per worker process: the scorers its plugin built, by model sha256
IN_FLIGHT_PER_WORKER = 2  # scored partitions waiting to be written, per worker: bounds the client's memory


class ScorerPlugin(WorkerPlugin):
    """A Dask worker plugin that builds the scorer once when a worker starts (or joins later)."""

    name = "leadscore-scorer"

    def __init__(self, scorer: Scorer) -> None:
        self.model_text, self.meta = scorer.model.text, scorer.model.meta.as_json()
        self.registry_version, self.status = scorer.model.registry_version, scorer.status
        self.params, self.grade_bands = scorer.params.model_dump(mode="json"), scorer.grade_bands
        self.sha256 = scorer.model.meta.model_sha256

    def setup(self, worker: Any) -> None:
        meta = parse_model_meta(self.meta, where="the model metadata shipped to this worker")
        model = dataclasses.replace(model_from_bytes(self.model_text, meta, where="the model shipped to this worker"),
                                    registry_version=self.registry_version)
        _SCORERS[self.sha256] = Scorer(model, ScoreParams.model_validate(self.params), list(self.grade_bands),
                                       self.status)

    def teardown(self, worker: Any) -> None:
        _SCORERS.pop(self.sha256, None)


def score_partition(partition: pd.DataFrame, *, model_sha256: str, scored_at: str,
                    detail: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], int]:
    """Runs on a worker: the partition's scores, quarantined rows (row numbers within the
    partition), drift counts (JSON-able) and row count."""
    scorer = _SCORERS.get(model_sha256)
    if scorer is None:
        raise ModelError(f"model {model_sha256[:12]} was not installed on this worker (plugin missing)")
    scores, bad, counter = scorer.score_chunk(partition, scored_at=scored_at, detail=detail)
    return scores, bad, counter.to_dict(), len(partition)


def _partitions(path: Path, columns: list[str]) -> list[Any]:
    """The input as delayed pandas partitions: Parquet row groups / files, or CSV blocks read as text."""
    import dask.dataframe as dd

    if table_format(path) == "parquet":
        frame = dd.read_parquet(str(path), columns=columns, split_row_groups=True)  # a partition per row group
    else:
        frame = dd.read_csv(str(path), usecols=columns, dtype=str, keep_default_na=False, na_values=[""],
                            blocksize="64MB")
    return list(frame.to_delayed())


def score_dask(scorer: Scorer, *, input_path: Path, output_path: Path, drift: DriftParams,
               scheduler: str | None = None, workers: int | None = None, progress: bool = False,
               scored_at: str | None = None) -> BatchSummary:
    """:func:`pipeline.scoring.batch.score_file` on a Dask cluster: same inputs, same output, same side
    files. The partitions are the input's row groups (Parquet) or 64 MB blocks (CSV), not chunks of rows."""
    import dask

    batch = Batch(scorer, input_path=input_path, output_path=output_path, scored_at=scored_at)
    sha256 = scorer.model.meta.model_sha256
    client = dask_client(scheduler, workers)
    try:
        client.register_plugin(ScorerPlugin(scorer))
        parts = _partitions(input_path, batch.reader.columns)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        log.info("dask: %d partition(s) on %d worker(s) at %s", len(parts), n_workers,
                 client.scheduler_info().get("address", "?"))
        task = dask.delayed(score_partition, pure=False)
        pending: deque[Any] = deque()
        queue = iter(parts)
        with ChunkWriter(output_path) as writer, progress_bar(batch.reader.total_rows, enabled=progress) as advance:
            while True:
                while len(pending) < IN_FLIGHT_PER_WORKER * n_workers and (part := next(queue, None)) is not None:
                    pending.append(client.compute(task(part, model_sha256=sha256, scored_at=batch.scored_at,
                                                       detail=batch.detail)))
                if not pending:
                    break
                scores, bad, counts, n = pending.popleft().result()
                batch.add(writer, scores, bad, DriftCounter.from_dict(counts), rows=n)
                advance(n)
            batch.close(writer)
    finally:
        close_client(client, scheduler=scheduler)
    return batch.summary(writer.rows, drift=drift)
