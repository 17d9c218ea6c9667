"""The checked activity log's kept rows, held on disk instead of in memory.

At 5M leads an activity log has 100M rows; even as three small codes per row (the key as a code
into the known ids, the type as a code into the types met, the time in microseconds: 14 bytes) it
is 1.4 GB, and joining its chunks doubled that. :class:`EventSpill` appends each checked chunk's
kept rows to three flat files in a temporary folder and reads them back a slice at a time, so the
log's memory is one chunk whatever its length. Rows set aside after the read (dated after the
export's clock) are remembered by their position and skipped on the way out. The folder is removed
when the spill is closed or garbage-collected, or by the next run if this one is killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.data.clock import DateCounts
from pipeline.io.files import remove_stale_folders

COLUMNS = {"key": np.int32, "type": np.int16, "time": np.int64}
SPILL_NAME = "events-spill"
READ_ROWS = 1 << 22  # rows read back at a time: 56 MiB of codes


class EventSpill:
    """Kept activity rows, appended in file order; ``removed`` holds the positions set aside since."""

    def __init__(self, n_keys: int, *, folder: Path | None = None) -> None:
        """``folder``: where the spill's own folder goes (default: the system's temporary folder). A
        spill a killed run left there is removed first."""
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_folders(folder, SPILL_NAME)
        self._dir = Path(tempfile.mkdtemp(prefix=f".{SPILL_NAME}.{os.getpid()}.", suffix=".tmp", dir=folder))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._files = {name: open(self._dir / name, "wb") for name in COLUMNS}  # noqa: SIM115 (closed in finish)
        self.rows = 0
        self.removed = np.array([], dtype=np.int64)
        self._key_counts = np.zeros(n_keys, dtype=np.int64)  # kept rows per known key
        self._type_counts = np.zeros(0, dtype=np.int64)       # kept rows per type code
        self._dates: list[DateCounts] = []

    def append(self, *, key: np.ndarray, kind: np.ndarray, time: np.ndarray) -> None:
        """One chunk's kept rows: key codes (into the known ids), type codes, times (microseconds)."""
        for name, values in (("key", key), ("type", kind), ("time", time)):
            np.ascontiguousarray(values, dtype=COLUMNS[name]).tofile(self._files[name])
        self._key_counts += np.bincount(key, minlength=len(self._key_counts))
        self._count_types(np.bincount(kind))
        self._dates.append(DateCounts.of_micros(np.asarray(time, dtype=np.int64)))
        self.rows += len(key)

    def finish(self) -> None:
        for f in self._files.values():
            f.close()

    def close(self) -> None:
        """Remove the files (the spill can't be read after)."""
        self.finish()
        self._cleanup()

    @property
    def folder(self) -> Path:
        """The spill's own folder (removed with it)."""
        return self._dir

    @property
    def kept(self) -> int:
        return self.rows - len(self.removed)

    def dates(self) -> DateCounts:
        """The counts of the times of the rows appended (before any were removed)."""
        return DateCounts.merged(self._dates)

    def remove(self, positions: np.ndarray) -> None:
        """Set aside rows by their position among the rows appended."""
        new = np.setdiff1d(np.asarray(positions, dtype=np.int64), self.removed)
        for start in range(0, self.rows, READ_ROWS) if len(new) else ():
            lo, hi = np.searchsorted(new, [start, start + READ_ROWS])
            if hi > lo:
                count, at = min(READ_ROWS, self.rows - start), new[lo:hi] - start
                self._key_counts -= np.bincount(self._read("key", start, count)[at], minlength=len(self._key_counts))
                self._count_types(-np.bincount(self._read("type", start, count)[at]))
        self.removed = np.union1d(self.removed, new)

    def used_keys(self) -> np.ndarray:
        """Which known keys (by code) the rows kept hold."""
        return self._key_counts > 0

    def used_types(self) -> np.ndarray:
        """The type codes the rows kept hold."""
        return np.flatnonzero(self._type_counts > 0)

    def _count_types(self, counts: np.ndarray) -> None:
        if len(counts) > len(self._type_counts):
            self._type_counts = np.pad(self._type_counts, (0, len(counts) - len(self._type_counts)))
        self._type_counts[:len(counts)] += counts

    def slices(self, rows: int = READ_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Every row appended, ``rows`` at a time: the position of the first, and each column."""
        for start in range(0, self.rows, rows):
            count = min(rows, self.rows - start)
            yield start, {name: self._read(name, start, count) for name in COLUMNS}

    def kept_slices(self, rows: int = READ_ROWS) -> Iterator[dict[str, np.ndarray]]:
        """The rows kept (appended and not removed), in order, in slices of up to ``rows``."""
        for start, columns in self.slices(rows):
            lo, hi = np.searchsorted(self.removed, [start, start + len(columns["key"])])
            if hi > lo:
                keep = np.ones(len(columns["key"]), dtype=bool)
                keep[self.removed[lo:hi] - start] = False
                columns = {name: values[keep] for name, values in columns.items()}
            yield columns

    def _read(self, name: str, start: int, count: int) -> np.ndarray:
        dtype = np.dtype(COLUMNS[name])
        return np.fromfile(self._dir / name, dtype=dtype, count=count, offset=start * dtype.itemsize)


def regrouped(parts: Iterator[dict[str, np.ndarray]], rows: int) -> Iterator[dict[str, np.ndarray]]:
    """``parts`` re-cut into slices of exactly ``rows`` rows, the last one shorter; one empty slice
    when there are no rows (a writer still needs a table to take the schema from)."""
    held: list[dict[str, np.ndarray]] = []
    count, given = 0, 0
    for part in parts:
        held.append(part)
        count += len(part["key"])
        while count >= rows:
            joined = {name: np.concatenate([p[name] for p in held]) for name in COLUMNS}
            yield {name: values[:rows] for name, values in joined.items()}
            given += 1
            held = [{name: values[rows:] for name, values in joined.items()}]
            count -= rows
    if count or not given:
        yield {name: np.concatenate([p[name] for p in held]) if held else np.array([], dtype=dtype)
               for name, dtype in COLUMNS.items()}
