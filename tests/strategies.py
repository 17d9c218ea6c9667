"""Hypothesis strategies shared by the property tests: CRM cells as they come, and a quick profile."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "n/a", "NaN", "inf", "-inf", "1e309", "$3.5k", "1,200", "(12)", "12%", "yes", "NO",
                     "2024-02-30", "2024-01-05", "31/12/2024", "=1+1", "\x00", "null", "-0", "0x1F", "１２"]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


COLUMNS = st.lists(CELLS, min_size=0, max_size=25)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
