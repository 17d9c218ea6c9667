"""What a model's training outcomes add to the registered model before it."""

from __future__ import annotations

import pandas as pd

from pipeline.mlops.provenance import closed_outcomes, outcome_change


def _slices(rows: dict[str, list[tuple[str, int]]]) -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame(part, columns=["record_id", "label"]) for name, part in rows.items()}


def test_added_relabelled_and_dropped_are_counted_by_record_id() -> None:
    before = closed_outcomes(_slices({"train": [("a", 1), ("b", 0)], "valid": [("c", 0)], "test": [("d", 1)]}))
    now = closed_outcomes(_slices({"train": [("a", 1), ("b", 1)], "valid": [("d", 1)],
                                   "test": [("e", 1), ("f", 0)]}))
    change = outcome_change(now, before, previous_version="3")
    assert (change.outcomes, change.won, change.added, change.added_won) == (5, 4, 2, 1)
    assert (change.relabelled, change.dropped) == (1, 1)  # b went from lost to won; c is gone
    assert change.added_by_slice == {"train": 0, "valid": 0, "test": 2}
    assert change.sentence() == ("5 closed deals (4 won): 2 added since version 3 (1 won; 2 to test), "
                                 "1 relabelled, 1 dropped")


def test_no_previous_model_or_no_list_says_so() -> None:
    now = closed_outcomes(_slices({"train": [("a", 1)], "valid": [("b", 0)], "test": [("c", 1)]}))
    first = outcome_change(now, None, previous_version=None)
    assert first.added is None and "no earlier registered model" in first.sentence()
    unknown = outcome_change(now, None, previous_version="2")
    assert unknown.added is None and "what changed is unknown" in unknown.sentence()
