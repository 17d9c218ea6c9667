"""Reading and writing big tables a chunk at a time: CSV or Parquet in, CSV or Parquet out.

CSV output is made safe for spreadsheets and CRM imports (:func:`spreadsheet_safe`).

Memory stays flat as the file grows: at most one chunk of input (``chunk_rows`` rows) and the
writer's buffers are held at once. Output goes to a temporary file in the destination folder and
is renamed over the destination only when every chunk is written, so a reader never sees half a
file and a killed run leaves the old file (or none) at the output path.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.errors import DataError
from pipeline.io.files import atomic_path, binary_file_reason, remove_stale_temporaries

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")


def table_format(path: Path) -> str:
    """"parquet" (a file, or a folder of Parquet files such as a partitioned dataset) or "csv"."""
    name = path.name.lower().removesuffix(".gz")
    if path.is_dir() or name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(f"{path}: unknown file type; leadscore reads and writes .csv or .parquet "
                    "(or a folder of Parquet files)")


class ChunkReader:
    """The rows of a CSV or Parquet table, ``chunk_rows`` at a time, as DataFrames.

    CSV cells are read as text (the scoring code converts them as the model needs), so a stray
    word in a numeric column never stops the read. ``columns`` limits what is read; a column the
    file lacks is left out (the caller names what it needs)."""

    def __init__(self, path: Path, *, chunk_rows: int, columns: list[str] | None = None) -> None:
        if not path.exists():
            raise DataError(f"input {path} does not exist")
        self.path, self.chunk_rows, self.format = path, chunk_rows, table_format(path)
        self.header = self._header()
        self.columns = [c for c in columns if c in self.header] if columns is not None else self.header
        self.malformed: dict[tuple[int | None, str], str] = {}  # CSV lines skipped: (line, text) -> reason

    def _header(self) -> list[str]:
        if self.format == "parquet":
            try:
                return list(self._dataset().schema.names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(f"{self.path}: not a readable Parquet file or dataset: {exc}") from exc
        with open(self.path, "rb") as fh:
            head = fh.read(65536)
        if not head.strip():
            raise DataError(f"{self.path} is empty: expected a header row")
        reason = binary_file_reason(head)
        if reason:
            raise DataError(f"{self.path}: {reason}")
        try:
            first = next(csv.reader([head.decode("utf-8-sig").splitlines()[0]]))
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text ({exc}); save it as UTF-8 CSV") from exc
        names = [c.strip() for c in first]
        duplicated = sorted({c for c in names if names.count(c) > 1})
        if duplicated:
            raise DataError(f"{self.path}: the header repeats column(s) {', '.join(duplicated)}")
        return first

    def _dataset(self) -> pads.Dataset:
        return pads.dataset(self.path, format="parquet")

    @property
    def total_rows(self) -> int | None:
        """Rows in the table if known without reading it (Parquet metadata), else None."""
        return int(self._dataset().count_rows()) if self.format == "parquet" else None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        batches = self._parquet_batches() if self.format == "parquet" else self._csv_batches()
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            while held >= self.chunk_rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, self.chunk_rows))
                rest = table.slice(self.chunk_rows)
                # An empty slice still holds its parent's buffers: keeping one would chain every
                # chunk read so far, and memory would grow with the file.
                pending, held = [b for b in rest.to_batches() if b.num_rows], rest.num_rows
        if held:
            yield _frame(pa.Table.from_batches(pending))

    def _parquet_batches(self) -> Iterator[pa.RecordBatch]:
        # File by file, row group by row group, without pre-buffering: a dataset scanner reads
        # ahead across row groups, and a pre-buffered reader keeps every row group it has read
        # until the file is closed; either way peak memory grew with the file.
        files = self._dataset().files
        try:
            for file in files:
                with pq.ParquetFile(file, pre_buffer=False) as parquet:
                    yield from parquet.iter_batches(batch_size=self.chunk_rows, columns=self.columns,
                                                    use_threads=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{self.path}: cannot read: {exc}") from exc

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        """CSV blocks as text columns. A line with the wrong number of fields is skipped and kept in
        :attr:`malformed` (with its text) for the caller to quarantine. A cell bigger than a block
        makes the parse start again with blocks 8x bigger, skipping the rows already passed on."""
        text = {name: pa.string() for name in self.header}
        block, passed = 2 << 20, 0
        while True:
            skip = passed
            try:
                # The streaming reader parses a few dozen blocks ahead: 2 MB blocks keep that near
                # 80 MB (8 MB blocks held about 250 MB) at the same speed.
                reader = pacsv.open_csv(
                    self.path, read_options=pacsv.ReadOptions(block_size=block, encoding="utf-8"),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=self._malformed),
                    convert_options=pacsv.ConvertOptions(column_types=text, include_columns=self.columns,
                                                         strings_can_be_null=True))
                for batch in reader:
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch, skip = batch.slice(skip), 0
                    passed += batch.num_rows
                    yield batch
                return
            except pa.ArrowInvalid as exc:
                if "straddling" in str(exc) and block < (1 << 30):
                    block *= 8
                    continue
                raise DataError(f"{self.path}: malformed CSV: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise DataError(f"{self.path}: not UTF-8 text ({exc}); save it as UTF-8 CSV") from exc

    def _malformed(self, row: Any) -> str:
        key = (row.number, row.text)
        self.malformed[key] = (f"malformed CSV line: {row.actual_columns} field(s) where the header has "
                               f"{row.expected_columns}")
        return "skip"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what Excel, Sheets and CRM importers may run as a formula


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that starts like a formula (= + - @ tab CR) prefixed with an
    apostrophe, so a CRM string such as ``=HYPERLINK(...)`` is shown as text, never run, when the CSV
    is opened in a spreadsheet or imported into a CRM (OWASP's "CSV injection"). Numbers are untouched."""
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
            continue
        text = column.astype(object)
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START)).to_numpy(dtype=bool)
        if risky.any():
            out[name] = text.where(~risky, "'" + text.where(risky, "").astype(str))
    return out


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(split_blocks=True, self_destruct=True)


class ChunkWriter(AbstractContextManager["ChunkWriter"]):
    """Appends DataFrames to a CSV or Parquet file that appears at ``path`` only when the block ends
    without an error. Every chunk must have the first chunk's columns."""

    def __init__(self, path: Path) -> None:
        self.path, self.format = path, table_format(path)
        self.rows = 0
        self._atomic = atomic_path(path)
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def __enter__(self) -> ChunkWriter:
        for stale in remove_stale_temporaries(self.path):
            log.info("removed %s, left by an interrupted run", stale)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame = spreadsheet_safe(frame)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._schema is None:
            self._schema = table.schema
            if self.format == "parquet":
                self._writer = pq.ParquetWriter(self._tmp, self._schema)
            else:
                self._writer = pacsv.CSVWriter(self._tmp, self._schema,
                                               write_options=pacsv.WriteOptions(quoting_style="needed"))
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> bool | None:
        if self._writer is not None:
            self._writer.close()
        if kind is None:
            if self._writer is None:
                raise ValueError(f"nothing was written to {self.path}: write at least one (maybe empty) chunk")
            fd = os.open(self._tmp, os.O_RDONLY)  # on disk before the rename makes it visible
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return self._atomic.__exit__(kind, error, trace)
