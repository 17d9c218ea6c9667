"""leadscore: predictive lead scoring with reasons a sales rep can read."""

import os

__version__ = "0.1.0"

# NumPy asks Linux for 2 MB transparent huge pages for every array of 4 MB or more. Where huge pages
# are "madvise" with synchronous defrag (the default of many distributions and VMs), touching such an
# array can stall on memory compaction: on our 2-core VMs a fresh 160 MB array took 0.4 s to fill
# instead of 0.08 s, and the features stage at 1M leads ran about 1.5x slower. NumPy reads this
# variable once, when it is imported, so it is set here, before any of our modules import it.
# Set NUMPY_MADVISE_HUGEPAGE=1 in the environment to keep huge pages.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
