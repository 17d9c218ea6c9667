"""`leadscore score --input X --output Y`: any feature-matrix file scored in chunks, memory flat in
its size, output written atomically in input order, unscorable rows quarantined with their reason,
and a drift report, on this machine (:func:`score_file`) or on Dask (:mod:`pipeline.scoring.dask`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import DriftParams
from pipeline.errors import DataError
from pipeline.io.files import OutputSet, atomic_path, output_set, write_json
from pipeline.io.tables import ChunkWriter, TableReader, spreadsheet_safe, table_format
from pipeline.modeling.drift import DriftCounter, drift_warning
from pipeline.runtime import progress_bar
from pipeline.scoring.scorer import Scorer

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"  # beside `--output X`: X and its sidecars with their sha256, written last


def drift_report(counter: DriftCounter, params: DriftParams) -> dict[str, Any]:
    """The PSI report, logged as a warning naming drifted features."""
    report = counter.report(watch=params.watch, act=params.act)
    warning = drift_warning(report)
    if warning:
        log.warning("%s", warning)
    return report


def now_utc() -> str:
    """The scored_at stamp: now, in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BatchSummary:
    """What a `leadscore score --input` run did."""

    output: Path
    rows_in: int
    rows_out: int
    quarantined: int
    quarantine_path: Path | None
    drift_path: Path | None      # None when no row was scored
    model_version: str
    model_status: str


def side_path(output: Path, suffix: str) -> Path:
    """``scores.csv`` -> ``scores.<suffix>``: where a batch's quarantine and drift files go."""
    name = output.name.removesuffix(".gz")
    return output.with_name(name.rsplit(".", 1)[0] + suffix)


class Batch:
    """The bookkeeping of one `score --input` run, shared by the local and the Dask engine: the
    reader, quarantined rows numbered across chunks, merged drift counts, rows in."""

    def __init__(self, scorer: Scorer, *, input_path: Path, output_path: Path, scored_at: str | None) -> None:
        self.scorer, self.input_path, self.output_path = scorer, input_path, output_path
        self.detail = table_format(output_path) == "parquet"  # an unknown output type fails before any work
        self.reader = TableReader(input_path, label="input", columns=scorer.input_columns(),
                                  encoding_fix="save it as UTF-8 CSV")
        scorer.check_input_columns(self.reader.header, input_path)
        nested = {c: kind for c, kind in self.reader.nested.items() if c in self.reader.columns}
        if nested:  # a feature is one number or one category per row, never a list or a record
            shown = ", ".join(f"{c} ({kind})" for c, kind in nested.items())
            raise DataError(f"input: {input_path}: column(s) {shown} hold lists, structs or maps, not one value "
                            "per row; write each feature as a number or a text column")
        self.scored_at = scored_at or now_utc()
        self.rows_in = 0
        self.quarantined: list[pd.DataFrame] = []
        self.counter: DriftCounter | None = None

    def score(self, chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, DriftCounter]:
        """:meth:`Scorer.score_chunk` with this batch's stamp and output kind."""
        return self.scorer.score_chunk(chunk, scored_at=self.scored_at, detail=self.detail)

    def add(self, writer: ChunkWriter, scores: pd.DataFrame, bad: pd.DataFrame, counter: DriftCounter,
            rows: int) -> None:
        """A scored chunk of ``rows`` input rows, in input order (``bad`` numbered from 1 within it)."""
        writer.write(scores)
        self.quarantined.append(bad.assign(row=bad["row"] + self.rows_in))
        self.rows_in += rows
        self.counter = counter if self.counter is None else self.counter.merge(counter)

    def close(self, writer: ChunkWriter) -> None:
        """After the last chunk: CSV lines the parser could not split are quarantined too, and an
        input with no rows still gets an output file with the header."""
        malformed = self.reader.malformed
        if malformed:
            self.quarantined.append(pd.DataFrame({
                "row": [None if m.line is None else m.line - 1 for m in malformed],
                "record_id": [m.text.split(self.reader.delimiter or ",", 1)[0][:60] for m in malformed],
                "reason": [m.reason for m in malformed]}))
            self.rows_in += len(malformed)
        if self.rows_in == len(malformed):
            log.warning("%s has no rows: writing an empty %s", self.input_path, self.output_path.name)
            scores, _, _ = self.score(pd.DataFrame(columns=self.scorer.input_columns()))
            writer.write(scores)

    def summary(self, rows_out: int, *, drift: DriftParams, into: OutputSet | None = None) -> BatchSummary:
        """Write the quarantine and drift files next to the output (with ``into``, as members of that
        set of outputs); check rows in = out + quarantined."""
        model, status, output_path = self.scorer.model, self.scorer.status, self.output_path
        bad = pd.concat(self.quarantined, ignore_index=True) if self.quarantined else pd.DataFrame()
        quarantine_path = side_path(output_path, ".quarantine.csv")
        if rows_out + len(bad) != self.rows_in:
            raise RuntimeError(f"rows in ({self.rows_in}) != rows scored ({rows_out}) + quarantined ({len(bad)})")
        if len(bad):
            if into is not None:
                spreadsheet_safe(bad).to_csv(into.path(quarantine_path), index=False)
            else:
                with atomic_path(quarantine_path) as tmp:
                    spreadsheet_safe(bad).to_csv(tmp, index=False)
            log.warning("%d row(s) could not be scored; each is in %s with its reason", len(bad), quarantine_path)
        elif into is not None:
            into.remove(quarantine_path)  # an old run's quarantine must not look like this run's
        else:
            quarantine_path.unlink(missing_ok=True)
        drift_file = side_path(output_path, ".drift.json")
        drift_path = drift_file if self.counter is not None else None
        if self.counter is None:
            if into is not None:
                into.remove(drift_file)  # an old run's report is not this run's
        elif into is not None:
            into.write_json(drift_file, drift_report(self.counter, drift))
        else:
            write_json(drift_file, drift_report(self.counter, drift))
        log.info("scored %d of %d rows with the %s model %s -> %s", rows_out, self.rows_in, status, model.version,
                 output_path)
        return BatchSummary(output=output_path, rows_in=self.rows_in, rows_out=rows_out, quarantined=len(bad),
                            quarantine_path=quarantine_path if len(bad) else None, drift_path=drift_path,
                            model_version=model.version, model_status=status)


def score_file(scorer: Scorer, *, input_path: Path, output_path: Path, chunk_rows: int, drift: DriftParams,
               progress: bool = False, scored_at: str | None = None) -> BatchSummary:
    """Score every row of a feature-matrix file (CSV or Parquet), ``chunk_rows`` at a time, into
    ``output_path`` (CSV or Parquet, written atomically), in input order. Rows that cannot be scored
    go to ``<output>.quarantine.csv`` with their reason; the drift report to ``<output>.drift.json``.
    The three are published as one set, named with their sha256 in ``<output>.manifest.json``."""
    batch = Batch(scorer, input_path=input_path, output_path=output_path, scored_at=scored_at)
    run_id = f"{batch.scored_at} {scorer.model.version}"
    with output_set(side_path(output_path, MANIFEST_SUFFIX), run_id=run_id) as outputs:
        with ChunkWriter(output_path, into=outputs) as writer, \
                progress_bar(batch.reader.total_rows, enabled=progress) as advance:
            for chunk in batch.reader.frames(chunk_rows):
                batch.add(writer, *batch.score(chunk), rows=len(chunk))
                advance(len(chunk))
            batch.close(writer)
        return batch.summary(writer.rows, drift=drift, into=outputs)
