"""Scores and grades: one rounding and one set of cut-offs."""

import numpy as np

from pipeline.modeling.grades import grade


def test_grades_follow_the_bands() -> None:
    assert grade(np.array([100, 75, 74, 50, 49, 25, 24, 0]), [75, 50, 25]).tolist() == \
        ["A", "A", "B", "B", "C", "C", "D", "D"]
