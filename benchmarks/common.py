"""What the benchmarks share: each measurement runs in a fresh interpreter of its own, so its peak
RSS is its own (read with ``os.wait4`` when it exits) and one side's memory never counts for the other.

Linux carries the parent's peak RSS over into a child's ``ru_maxrss`` (fork and exec keep the
high-water mark), so a parent that measures children stays a bare interpreter: it never imports
pandas, pyarrow or the pipeline.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def self_peak_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_child(script: Path, argv: list[str], kind: str, *, out: Path | None = None,
              name: str = "bench") -> dict[str, Any]:
    """Run ``script argv --child kind`` in a fresh interpreter; its JSON result, plus its wall time
    (``process_wall_s``) and its own peak RSS (``peak_rss_mb``). The child writes its result to the
    file given by ``--child-result``; its stdout goes to our stderr (our stdout is for JSON lines)."""
    with tempfile.TemporaryDirectory(prefix=f"{name}.") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script.resolve()), *argv, "--child", kind, "--child-result", str(result_path)]
        if out is not None:
            cmd += ["--child-out", str(out)]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sys.stderr)  # same cwd: relative paths mean the same folders
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            what = "CHECK FAILED (see above)" if kind == "check" else f"the {kind} subprocess failed"
            raise SystemExit(f"{name}: {what} (exit code {proc.returncode})")
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result["process_wall_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024.0
    return result


def timed(ours: Callable[[], T], reference: Callable[[], T], repeat: int) -> tuple[float, float, T, T]:
    """Median wall times of ``repeat`` in-process calls of each, alternating so both see the same
    machine load, and the last result of each (the values checked)."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    for _ in range(repeat):
        for side, fn in enumerate((ours, reference)):
            started = time.perf_counter()
            results[side] = fn()
            times[side].append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1]), results[0], results[1]
