"""leadscore: predictive lead scoring with reasons a sales rep can read."""

import os
import tempfile
from pathlib import Path

__version__ = "0.1.0"

# NumPy asks Linux for 2 MB transparent huge pages for every array of 4 MB or more. Where huge pages
# are "madvise" with synchronous defrag (the default of many distributions and VMs), touching such an
# array can stall on memory compaction: on our 2-core VMs a fresh 160 MB array took 0.4 s to fill
# instead of 0.08 s, and the features stage at 1M leads ran about 1.5x slower. NumPy reads this
# variable once, when it is imported, so it is set here, before any of our modules import it.
# Set NUMPY_MADVISE_HUGEPAGE=1 in the environment to keep huge pages.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

# numba caches our compiled kernels beside their source by default, in pipeline/**/__pycache__: a
# checkout would change under DVC (whose deps are the code) and git every time it first runs. The
# user's cache folder keeps them out of the tree; numba keys them by the source file's full path, so
# several checkouts share it safely. Set NUMBA_CACHE_DIR to put them elsewhere.


def _user_cache() -> Path:
    """$XDG_CACHE_HOME, else ~/.cache, else (no home directory) the temporary folder."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"])
    try:
        return Path.home() / ".cache"
    except RuntimeError:
        return Path(tempfile.gettempdir())


os.environ.setdefault("NUMBA_CACHE_DIR", str(_user_cache() / "leadscore" / "numba"))
