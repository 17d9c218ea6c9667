"""Where a trained model came from: when, from which commit of which checkout, and which closed
deals it learnt from that the model before it did not."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pandas as pd

from pipeline import __version__
from pipeline.contracts.model import OutcomeChange, Provenance


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


def record(model_sha256: str, *, outcomes: OutcomeChange | None = None) -> Provenance:
    """The provenance of a model trained now, in this checkout."""
    commit, dirty = git_commit()
    return Provenance(model_sha256=model_sha256, trained_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      git_commit=commit, git_dirty=dirty, leadscore_version=__version__, outcomes=outcomes)


def closed_outcomes(slices: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The closed deals of the train, valid and test slices: record_id, label (1 won, 0 lost) and
    slice, by record id."""
    parts = [pd.DataFrame({"record_id": frame["record_id"].astype(str).to_numpy(),
                           "label": frame["label"].astype("int8").to_numpy(), "slice": name})
             for name, frame in slices.items()]
    return pd.concat(parts, ignore_index=True).sort_values("record_id", ignore_index=True)


def outcome_change(current: pd.DataFrame, previous: pd.DataFrame | None, *,
                   previous_version: str | None) -> OutcomeChange:
    """What ``current`` (:func:`closed_outcomes`) adds to ``previous``, the outcomes the registered
    model ``previous_version`` learnt from (None: unknown, or no such model)."""
    counts = {"outcomes": len(current), "won": int(current["label"].sum())}
    if previous_version is None or previous is None:
        return OutcomeChange(previous_version=previous_version, added=None, added_won=None, added_by_slice=None,
                             relabelled=None, dropped=None, **counts)
    joined = current.merge(previous[["record_id", "label"]], on="record_id", how="outer", suffixes=("", "_before"),
                           indicator=True)
    added = joined[joined["_merge"] == "left_only"]
    both = joined[joined["_merge"] == "both"]
    by_slice = {name: int((added["slice"] == name).sum()) for name in current["slice"].unique()}
    return OutcomeChange(previous_version=previous_version, added=len(added), added_won=int(added["label"].sum()),
                         added_by_slice=by_slice,
                         relabelled=int((both["label"] != both["label_before"]).sum()),
                         dropped=int((joined["_merge"] == "right_only").sum()), **counts)
