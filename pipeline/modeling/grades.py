"""The score a rep sees and its grade: one rounding and one set of cut-offs for training (the drift
reference), evaluation (conversion by grade) and scoring."""

from __future__ import annotations

import numpy as np

GRADES = ("A", "B", "C", "D")


def score_points(probability: np.ndarray) -> np.ndarray:
    """The 0-100 score of calibrated probabilities."""
    return np.rint(np.asarray(probability, dtype=float) * 100).astype(int)


def grade(scores: np.ndarray, bands: list[float]) -> np.ndarray:
    """A for score >= bands[0], B for >= bands[1], C for >= bands[2], else D."""
    index = np.searchsorted(-np.asarray(bands, dtype=float), -scores.astype(float), side="left")
    return np.array(GRADES, dtype=object)[index]
