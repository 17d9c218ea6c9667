"""Tables on disk: CSV or Parquet in (:class:`TableReader`, the one reader of exports and batches),
CSV or Parquet out (:class:`ChunkWriter`), a chunk at a time.

CSV output is made safe for spreadsheets and CRM imports (:func:`spreadsheet_safe`).

Memory stays flat as the file grows: at most one chunk of input and the writer's buffers are held
at once. Output goes to a temporary file in the destination folder and is renamed over the
destination only when every chunk is written, so a reader never sees half a file and a killed run
leaves the old file (or none) at the output path.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import logging
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.errors import ConfigError, DataError
from pipeline.io.files import OutputSet, atomic_path, binary_file_reason, remove_stale_temporaries

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
DELIMITERS = (",", ";", "\t", "|")  # what `delimiter: null` chooses among
SAMPLE_BYTES = 1 << 16              # read to check a file's kind and to sniff its delimiter
BLOCK_BYTES = 2 << 20               # CSV parse block: the streaming reader holds a few dozen ahead (~80 MB)
MAX_BLOCK_BYTES = 1 << 30           # a cell bigger than a block restarts the parse with 8x bigger blocks, up to this
# The one rule of every reader for a missing cell: an unquoted empty CSV cell, or a Parquet null. No
# other text ("NA", "null", "N/A", "nan", a quoted "") is missing when read: pyarrow's and pandas'
# default NA tokens are never applied, so "NA" (North America) stays a value. Ingest then blanks the
# declared placeholders of ``source.missing_values``, the same way for CSV and Parquet exports.
MISSING_CELLS = ("",)
ISO_TIME = "%Y-%m-%dT%H:%M:%S"      # how a native Parquet timestamp reads as text (UTC, no zone)
ISO_DAY = "%Y-%m-%d"                # how a native Parquet date reads as text


def table_format(path: Path) -> str:
    """The format of an output path: "parquet" or "csv", by its name."""
    name = path.name.lower().removesuffix(".gz")
    if path.is_dir() or name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(f"{path}: unknown file type; leadscore reads and writes .csv or .parquet "
                    "(or a folder of Parquet files)")


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is gzip-compressed (a ``.csv.gz``, whatever its name)."""
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_bytes(path: Path) -> IO[bytes]:
    """``path`` opened for reading its bytes, decompressed when it is gzip-compressed."""
    return gzip.GzipFile(path, "rb") if is_gzip(path) else path.open("rb")  # type: ignore[return-value]


def detect_encoding(path: Path) -> str:
    """utf-8-sig (BOM), utf-16 (BOM), utf-8, else cp1252 or latin-1 for a legacy Windows export."""
    with open_bytes(path) as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        c1_bytes = False
        try:
            for block in iter(lambda: fh.read(1 << 20), b""):
                c1_bytes = c1_bytes or bool(re.search(rb"[\x80-\x9f]", block))
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
        for block in iter(lambda: fh.read(1 << 20), b""):
            c1_bytes = c1_bytes or bool(re.search(rb"[\x80-\x9f]", block))
    if c1_bytes:  # bytes 0x80-0x9f are printable in cp1252 (curly quotes, euro) but control codes in latin-1
        try:
            with io.TextIOWrapper(open_bytes(path), encoding="cp1252") as text:
                for _ in iter(lambda: text.read(1 << 20), ""):
                    pass
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return "latin-1"


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | that splits the sample's rows into the most, most consistent fields."""
    best, best_key = ",", (0.0, 1)
    for delim in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delim) if r]
        if len(rows) > 1 and not sample.endswith(("\n", "\r")):
            rows = rows[:-1]  # the sample may end mid-row
        if not rows or len(rows[0]) < 2:
            continue
        consistency = sum(len(r) == len(rows[0]) for r in rows) / len(rows)
        key = (round(consistency, 2), len(rows[0]))
        if key > best_key:
            best, best_key = delim, key
    return best


@dataclass(frozen=True)
class Malformed:
    """A CSV line skipped because it has the wrong number of fields."""

    line: int | None    # in the file, the header being line 1
    text: str
    expected: int
    found: int

    @property
    def reason(self) -> str:
        return f"malformed line: expected {self.expected} fields, found {self.found}"


def _float_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """Floats as plain decimals ("1e+20" -> "100000000000000000000"), as a CSV export writes them; NaN
    is missing, as pandas writes it."""
    text = column.cast(pa.string())
    odd = pc.fill_null(pc.or_(pc.match_substring(text, "e"), pc.is_nan(column)), False)
    if not pc.any(odd).as_py():
        return text
    numbers, words = column.to_numpy(zero_copy_only=False), text.to_numpy(zero_copy_only=False)
    at = np.flatnonzero(np.asarray(odd.to_numpy(zero_copy_only=False), dtype=bool))
    words[at] = [None if np.isnan(v) else np.format_float_positional(v, trim="-") for v in numbers[at]]
    return pa.array(words, type=pa.string())


def _python_text(column: pa.ChunkedArray) -> pa.Array:
    """Any other column (binary, durations, extension types) as the text of its Python values."""
    return pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())


def _nested_text(column: pa.ChunkedArray) -> pa.Array:
    """Lists, structs and maps as JSON text (what a CSV export of them holds)."""
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                     for v in column.to_pylist()], type=pa.string())


def text_column(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A Parquet column as the text the equivalent CSV holds: timestamps as ISO 8601 in UTC without
    a zone (a zoned one converted to UTC), dates as YYYY-MM-DD, booleans as true/false, numbers as
    plain decimals, lists/structs/maps as JSON; a null stays null."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        return text_column(column.cast(kind.value_type))
    if pa.types.is_string(kind):
        return column
    if pa.types.is_timestamp(kind):
        utc = column.cast(pa.timestamp(kind.unit, tz="UTC")) if kind.tz else column  # the same instants
        with contextlib.suppress(pa.ArrowInvalid):  # whole seconds read as such ("10:00:00", not "10:00:00.000000")
            utc = utc.cast(pa.timestamp("s", tz=utc.type.tz))
        return pc.strftime(utc, format=ISO_TIME)
    if pa.types.is_date(kind):
        return pc.strftime(column.cast(pa.timestamp("s")), format=ISO_DAY)
    if pa.types.is_floating(kind):
        return _float_text(column)
    if pa.types.is_nested(kind):
        return _nested_text(column)
    if pa.types.is_null(kind):
        return pa.nulls(len(column), type=pa.string())
    return column.cast(pa.string())


def text_table(table: pa.Table, *, where: str) -> pa.Table:
    """Every column of ``table`` as text (:func:`text_column`); ``where`` names the file in the log."""
    columns = {}
    for name in table.column_names:
        try:
            columns[name] = text_column(table.column(name))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # no cast to text: what Python prints for it
            log.info("%s: column %r (%s) read as the text of its values", where, name, table.column(name).type)
            columns[name] = _python_text(table.column(name))
    return pa.table(columns)


class TableReader:
    """A CSV or Parquet export, the one reader of the project: ingest, `leadscore inspect` and
    `leadscore score --input` all read through it.

    The file is checked before any row is read: it exists, is not empty, is text in its encoding
    (not a workbook, an archive or binary) or a readable Parquet file or folder, and its header
    names each column once (``repeated_headers="drop"`` keeps the first and says so in
    :attr:`notes`; blank names are left out too). CSV cells are read as text, so a stray word in
    a numeric column never stops the read; a line with the wrong number of fields is skipped and
    kept in :attr:`malformed` for the caller to quarantine. ``delimiter`` or ``encoding`` None:
    detected. ``columns`` limits what is read (a column the file lacks is left out: the caller
    names what it needs). ``label`` (e.g. the table's name in the source mapping) starts every
    error message; ``encoding_fix`` says how to give another encoding. ``folders`` False: a
    folder (a partitioned Parquet dataset) is refused, for an export that names one file. ``text``
    True: Parquet columns are read as the text the equivalent CSV holds (:func:`text_column`), so
    an export reads the same whichever format it comes in. A missing cell is an unquoted empty CSV
    cell or a Parquet null, and nothing else (:data:`MISSING_CELLS`). :attr:`nested` names the
    Parquet columns holding lists, structs or maps, with their types."""

    def __init__(self, path: Path, *, label: str | None = None, delimiter: str | None = ",",
                 encoding: str | None = "utf-8", columns: list[str] | None = None, blanks_null: bool = True,
                 repeated_headers: Literal["refuse", "drop"] = "refuse", folders: bool = True, text: bool = False,
                 encoding_fix: str = "set its encoding (e.g. encoding: latin-1) in the source mapping") -> None:
        self.path, self.blanks_null, self.encoding_fix, self.text = path, blanks_null, encoding_fix, text
        self.nested: dict[str, str] = {}
        self._where = f"{label}: {path}" if label else str(path)
        self.notes: list[str] = []
        self.malformed: list[Malformed] = []
        self._seen: set[tuple[int | None, str]] = set()
        if not path.exists():
            raise DataError(f"{label + ': ' if label else ''}file not found: {path}")
        if path.is_dir() and not folders:
            raise DataError(f"{self._where} is a folder, not a file; name the export file itself")
        self._head = b"" if path.is_dir() else self._read_head()
        self.format = "parquet" if self._is_parquet() else "csv"
        self.delimiter: str | None = None
        self.encoding: str | None = None
        if self.format == "parquet":
            names = self._parquet_names()
        else:
            self.encoding = self._encoding(encoding)
            self.delimiter = delimiter or sniff_delimiter(self._head.decode(self.encoding, errors="ignore")
                                                          .lstrip("\ufeff"))
            names = self._csv_header()
        self.header = names
        self._keep = self._kept_positions(names, repeated_headers)
        kept = [names[i] for i in self._keep]
        self.columns = [c for c in columns if c in kept] if columns is not None else kept

    # ---- checks

    def _is_parquet(self) -> bool:
        if self.path.is_dir():
            return True
        if self.path.name.lower().endswith(PARQUET_SUFFIXES):
            return True
        return self._head[:4] == b"PAR1"

    def _read_head(self) -> bytes:
        """The file's first bytes: what tells its kind and its delimiter."""
        try:
            with open_bytes(self.path) as fh:
                return fh.read(SAMPLE_BYTES)
        except (EOFError, zlib.error) as exc:
            raise DataError(f"{self._where} cannot be read: it is gzip-compressed but damaged ({exc or 'cut short'})"
                            ) from None
        except OSError as exc:
            raise DataError(f"{self._where} cannot be read: {exc.strerror or exc}") from None

    def _encoding(self, encoding: str | None) -> str:
        head = self._head
        if not head.strip():
            raise DataError(f"{self._where} is empty")
        reason = binary_file_reason(head)
        if reason:
            raise DataError(f"{self._where} cannot be read: {reason}")
        if encoding is None:
            return detect_encoding(self.path)
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"{self._where}: unknown encoding {encoding!r} (try utf-8, utf-8-sig, cp1252 or "
                              "latin-1)") from None
        return encoding

    def _undecodable(self) -> DataError:
        return DataError(f"{self._where} is not valid {self.encoding} text; {self.encoding_fix}")

    def _csv_header(self) -> list[str]:
        header_encoding = "utf-8-sig" if codecs.lookup(self.encoding or "utf-8").name == "utf-8" else self.encoding
        try:
            with io.TextIOWrapper(open_bytes(self.path), encoding=header_encoding, newline="") as fh:
                names = next(csv.reader(fh, delimiter=self.delimiter or ","), [])
        except UnicodeDecodeError:
            raise self._undecodable() from None
        except csv.Error as exc:
            raise DataError(f"{self._where} cannot be parsed as delimited text: {exc}") from None
        if not names or all(not n.strip() for n in names):
            raise DataError(f"{self._where} has no header row")
        return names

    def _parquet_names(self) -> list[str]:
        try:
            schema = self._dataset().schema
            self.nested = {str(f.name): str(f.type) for f in schema if pa.types.is_nested(f.type)}
            return [str(n) for n in schema.names]
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{self._where} cannot be read as Parquet (not a readable Parquet file or dataset): "
                            f"{exc}") from None

    def _kept_positions(self, names: list[str], repeated: str) -> list[int]:
        dupes = sorted({n for n in names if names.count(n) > 1 and n.strip()})
        if dupes and repeated == "refuse":
            raise DataError(f"{self._where} has duplicate column header(s): {', '.join(dupes)}")
        if dupes:
            self.notes.append(f"headers appear more than once: {', '.join(dupes)}; the repeats are left out "
                              "(rename them in the export to use them)")
        if any(not n.strip() for n in names):
            self.notes.append("some columns have no header; they are left out")
        first = {n: i for i, n in reversed(list(enumerate(names)))}
        return [i for i, n in enumerate(names) if n.strip() and first[n] == i]

    def _dataset(self) -> pads.Dataset:
        return pads.dataset(self.path, format="parquet")

    @property
    def total_rows(self) -> int | None:
        """Rows in the table if known without reading it (Parquet metadata), else None."""
        return int(self._dataset().count_rows()) if self.format == "parquet" else None

    # ---- rows

    def tables(self, rows: int) -> Iterator[pa.Table]:
        """The rows, ``rows`` at a time (the last table may be shorter), as Arrow tables of the kept
        columns: CSV cells as text, Parquet columns as stored (as text with ``text``)."""
        batches = self._parquet_batches(rows) if self.format == "parquet" else self._csv_batches()
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield self._as_read(table.slice(0, rows))
                rest = table.slice(rows)
                # An empty slice still holds its parent's buffers: keeping one would chain every
                # chunk read so far, and memory would grow with the file.
                pending, held = [b for b in rest.to_batches() if b.num_rows], rest.num_rows
        if held:
            yield self._as_read(pa.Table.from_batches(pending))

    def _as_read(self, table: pa.Table) -> pa.Table:
        return text_table(table, where=self._where) if self.text and self.format == "parquet" else table

    def read(self) -> pa.Table:
        """Every row at once."""
        schema_of = self._empty
        parts = list(self.tables(1 << 62))
        return pa.concat_tables(parts) if parts else schema_of()

    def frames(self, rows: int) -> Iterator[pd.DataFrame]:
        """:meth:`tables` as pandas frames (pandas' own dtypes: text is ``str``)."""
        for table in self.tables(rows):
            yield table.to_pandas(split_blocks=True, self_destruct=True)

    def _empty(self) -> pa.Table:
        if self.format == "parquet":
            return self._as_read(self._dataset().schema.empty_table().select(self.columns))
        return pa.table({name: pa.array([], type=pa.string()) for name in self.columns})

    def _parquet_batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        # File by file, row group by row group, without pre-buffering: a dataset scanner reads
        # ahead across row groups, and a pre-buffered reader keeps every row group it has read
        # until the file is closed; either way peak memory grew with the file.
        try:
            for file in self._dataset().files:
                with pq.ParquetFile(file, pre_buffer=False) as parquet:
                    yield from parquet.iter_batches(batch_size=min(rows, 1 << 20), columns=self.columns,
                                                    use_threads=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{self._where} cannot be read as Parquet: {exc}") from None

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        """CSV blocks as text columns, kept columns only (each named by its first position)."""
        assert self.encoding is not None and self.delimiter is not None
        names = [f"{i}" for i in range(len(self.header))]  # positions: headers may repeat or be blank
        wanted = [str(i) for i in self._keep if self.header[i] in self.columns]
        block, passed = BLOCK_BYTES, 0
        while True:
            skip = passed
            try:
                reader = pacsv.open_csv(
                    pa.input_stream(str(self.path), compression="gzip") if is_gzip(self.path) else self.path,
                    read_options=pacsv.ReadOptions(block_size=block, encoding=self.encoding, use_threads=False,
                                                   column_names=names, skip_rows=1),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                                     invalid_row_handler=self._skip),
                    convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                         include_columns=wanted, null_values=list(MISSING_CELLS),
                                                         strings_can_be_null=self.blanks_null,
                                                         quoted_strings_can_be_null=False))
                for batch in reader:
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch, skip = batch.slice(skip), 0
                    passed += batch.num_rows
                    yield batch.rename_columns([self.header[int(n)] for n in batch.schema.names])
                return
            except pa.ArrowInvalid as exc:
                if "straddling" in str(exc) and block < MAX_BLOCK_BYTES:
                    block *= 8
                    continue
                if "utf8" in str(exc).lower():
                    raise self._undecodable() from None
                raise DataError(f"{self._where} cannot be parsed as delimited text: {exc}") from None
            except UnicodeDecodeError:
                raise self._undecodable() from None

    def _skip(self, row: Any) -> str:
        key = (row.number, row.text)
        if key not in self._seen:  # a parse started again (bigger blocks) meets the same lines again
            self._seen.add(key)
            self.malformed.append(Malformed(line=row.number, text=row.text, expected=row.expected_columns,
                                            found=row.actual_columns))
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
        codes, uniques = pd.factorize(text)  # each distinct value checked once: most columns repeat a few
        bad = np.fromiter((isinstance(v, str) and v.startswith(FORMULA_START) for v in uniques), dtype=bool,
                          count=len(uniques))
        risky = (codes >= 0) & bad[np.maximum(codes, 0)] if len(uniques) else np.zeros(len(text), dtype=bool)
        if risky.any():
            out[name] = text.where(~risky, "'" + text.where(risky, "").astype(str))
    return out


class ChunkWriter(AbstractContextManager["ChunkWriter"]):
    """Appends DataFrames to a CSV or Parquet file that appears at ``path`` only when the block ends
    without an error (with ``into``, when that set of outputs is published). Every chunk must have
    the first chunk's columns. A ``.csv.gz`` path is written gzip-compressed."""

    def __init__(self, path: Path, *, into: OutputSet | None = None) -> None:
        self.path, self.format = path, table_format(path)
        self.rows = 0
        self._into = into
        self._atomic = atomic_path(path)
        self._writer: Any = None
        self._sink: Any = None
        self._schema: pa.Schema | None = None

    def __enter__(self) -> ChunkWriter:
        if self._into is not None:
            self._tmp = self._into.path(self.path)
            return self
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
                gzipped = self.path.name.lower().endswith(".gz")
                self._sink = pa.CompressedOutputStream(str(self._tmp), "gzip") if gzipped else str(self._tmp)
                self._writer = pacsv.CSVWriter(self._sink, self._schema,
                                               write_options=pacsv.WriteOptions(quoting_style="needed"))
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> bool | None:
        if self._writer is not None:
            self._writer.close()
        if isinstance(self._sink, pa.NativeFile):
            self._sink.close()
        if kind is None:
            if self._writer is None:
                raise ValueError(f"nothing was written to {self.path}: write at least one (maybe empty) chunk")
            fd = os.open(self._tmp, os.O_RDONLY)  # on disk before the rename makes it visible
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if self._into is not None:
            return None  # the set publishes (or discards) the file
        return self._atomic.__exit__(kind, error, trace)
