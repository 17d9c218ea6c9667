"""Process-wide settings for a batch run of a stage (the ``leadscore`` command, the benchmark)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


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
