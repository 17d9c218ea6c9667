"""How a batch command runs: memory reuse, quiet third-party loggers, a progress bar on a terminal."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

log = logging.getLogger(__name__)

# glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def lean_memory() -> None:
    """For a command whose limit is its peak memory: Arrow's buffers from jemalloc where this pyarrow
    has it (it returns freed pages to the system sooner than mimalloc, the default)."""
    import pyarrow as pa

    if "jemalloc" in pa.supported_memory_backends():
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def return_freed_memory() -> None:
    """Give memory freed so far back to the system (Arrow's pool, then glibc's heap), so the next
    step's peak does not stack on what the last one left. Milliseconds; a no-op where unsupported."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory for reuse.

    By default every array over 32 MB is its own mmap, returned to the system when freed, so the
    next array of that size is faulted in again, page by page. A stage makes hundreds of such
    temporaries over its columns; reusing the memory saved about 0.5 s of the 7 s features stage
    at 1M leads. The cost: the process keeps its peak memory until it exits (a few hundred MB
    more at 1M leads), which suits a batch command, not a long-lived server. A no-op (False)
    anywhere but Linux with glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    ok = all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, (1 << 31) - 1), (_M_TOP_PAD, 64 << 20)))
    log.debug("glibc malloc tuned for a batch run: %s", ok)
    return ok


def quiet_loggers(*names: str) -> None:
    """Keep chatty libraries (MLflow, alembic, distributed) to warnings and errors in our logs."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def quieted(*names: str) -> Iterator[None]:
    """``quiet_loggers`` for the duration of a block (the loggers' levels restored after)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    quiet_loggers(*names)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def progress_bar(total: int | None, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rows and rows/s progress bar on stderr when ``enabled`` (a terminal); a no-op otherwise."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} rows/s" if task.speed else "")

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), RowsPerSecond(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("score", total=total)
        yield lambda n: bar.advance(task, n)
