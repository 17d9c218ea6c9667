"""Where a trained model came from: when, and from which commit of which checkout."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from pipeline import __version__
from pipeline.contracts.model import Provenance


def git_commit() -> tuple[str | None, bool | None]:
    """HEAD of the repository the process runs in, and whether tracked files differ from it
    (None, None outside a git checkout)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head, bool(dirty)


def record(model_sha256: str) -> Provenance:
    """The provenance of a model trained now, in this checkout."""
    commit, dirty = git_commit()
    return Provenance(model_sha256=model_sha256, trained_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      git_commit=commit, git_dirty=dirty, leadscore_version=__version__)
