"""Scoring on a Dask cluster: the same chunk function as the local engine, one partition at a time.

A LocalCluster on this machine by default, or an existing scheduler (``--scheduler
tcp://host:8786``); its workers need leadscore installed (``pip install 'leadscore[dask]'``). The
model (LightGBM text plus JSON metadata, no pickle) is shipped once per worker with a worker
plugin and loaded there once; each partition is scored by :func:`pipeline.score.score_chunk`.
The client gathers the scored partitions in order, a few at a time, and appends them to one
output file, so the output equals the local engine's row for row.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import Client, LocalCluster, WorkerPlugin

from pipeline.chunks import ChunkWriter, table_format
from pipeline.config import ScoreParams, Settings
from pipeline.drift import DriftCounter
from pipeline.errors import ConfigError, ModelError
from pipeline.model import LoadedModel, model_from_bytes
from pipeline.score import (
    Batch,
    BatchSummary,
    progress_bar,
    score_chunk,
)

log = logging.getLogger(__name__)

_MODELS: dict[str, LoadedModel] = {}  # per worker process: the models its plugin installed, by sha256
IN_FLIGHT_PER_WORKER = 2  # scored partitions waiting to be written, per worker: bounds the client's memory


class ModelPlugin(WorkerPlugin):
    """A Dask worker plugin that loads the model once when a worker starts (or joins later)."""

    name = "leadscore-model"

    def __init__(self, model_text: bytes, meta: dict[str, Any]) -> None:
        self.model_text, self.meta = model_text, meta

    def setup(self, worker: Any) -> None:
        model = model_from_bytes(self.model_text, self.meta, where="the model shipped to this worker")
        _MODELS[model.meta["model_sha256"]] = model

    def teardown(self, worker: Any) -> None:
        _MODELS.pop(self.meta["model_sha256"], None)


def score_partition(partition: pd.DataFrame, *, model_sha256: str, params: ScoreParams, scored_at: str,
                    model_status: str, detail: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any] | None, int]:
    """Runs on a worker: the partition's scores, quarantined rows (row numbers within the
    partition), drift counts (JSON-able) and row count."""
    model = _MODELS.get(model_sha256)
    if model is None:
        raise ModelError(f"model {model_sha256[:12]} was not installed on this worker (plugin missing)")
    scores, bad, counter = score_chunk(model, partition, params=params, scored_at=scored_at,
                                       model_status=model_status, detail=detail)
    return scores, bad, None if counter is None else counter.to_dict(), len(partition)


def _client(scheduler: str | None, workers: int | None) -> Client:
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.core",
                 "distributed.http.proxy", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if scheduler:
        try:
            return Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def _partitions(path: Path, columns: list[str]) -> list[Any]:
    """The input as delayed pandas partitions: Parquet row groups / files, or CSV blocks read as text."""
    import dask.dataframe as dd

    if table_format(path) == "parquet":
        frame = dd.read_parquet(str(path), columns=columns, split_row_groups=True)  # a partition per row group
    else:
        frame = dd.read_csv(str(path), usecols=columns, dtype=str, keep_default_na=False, na_values=[""],
                            blocksize="64MB")
    return list(frame.to_delayed())


def score_dask(settings: Settings, *, input_path: Path, output_path: Path, model_name: str | None = None,
               scheduler: str | None = None, workers: int | None = None, progress: bool = False,
               scored_at: str | None = None) -> BatchSummary:
    """:func:`pipeline.score.score_file` on a Dask cluster: same inputs, same output, same side files.
    The partitions are the input's row groups (Parquet) or 64 MB blocks (CSV), not chunks of rows."""
    import dask

    batch = Batch(settings, input_path=input_path, output_path=output_path, model_name=model_name,
                  chunk_rows=None, scored_at=scored_at)
    model = batch.model
    client = _client(scheduler, workers)
    try:
        client.register_plugin(ModelPlugin(model.text, model.meta))
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
                    pending.append(client.compute(task(part, model_sha256=model.meta["model_sha256"],
                                                       params=settings.score, scored_at=batch.scored_at,
                                                       model_status=batch.status, detail=batch.detail)))
                if not pending:
                    break
                scores, bad, counts, n = pending.popleft().result()
                batch.add(writer, scores, bad, None if counts is None else DriftCounter.from_dict(counts), rows=n)
                advance(n)
            batch.close(writer)
    finally:
        client.close()
        if not scheduler and client.cluster is not None:
            client.cluster.close()
    return batch.summary(writer.rows)
