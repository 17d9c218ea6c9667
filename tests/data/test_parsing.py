"""The fast readings of dates and text give what the pandas readings give."""

import numpy as np
import pandas as pd
import pytest

from pipeline.data import parsing


def test_exactly_written_dates_read_byte_by_byte_as_pandas_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ["2023-01-01 00:07:18", "2023-02-30 00:00:00", "2024-02-29 00:00:00", "2023-02-29 00:00:00",
              "0000-01-01 00:00:00", "9999-12-31 23:59:59", "2023-1-1 0:7:18", " 2023-01-01 00:07:18",
              "2023-01-01 24:00:00", "2023-01-01 00:07:60", "", None, "2023-01-01T00:07:18Z",
              "2023-01-01 00:07:18+02:00", "2023-13-01 00:00:00", "2023-01-00 00:00:00", "２０２３-01-01 00:00:00",
              "2023/01/01 00:07:18", "20230101", "01/02/2023", "2023-01-01 00:0/:18"] * 2
    text = pd.Series(values, dtype="string", index=range(7, 7 + len(values)))
    formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%m/%d/%Y", "%b %d %Y"]
    fast = {fmt: parsing.parse_dates(text, fmt) for fmt in formats}
    monkeypatch.setattr(parsing, "_exact_dates", lambda values, fmt: None)  # the pandas reading only
    for fmt in formats:
        pd.testing.assert_series_equal(fast[fmt], parsing.parse_dates(text, fmt))
    assert fast["%Y-%m-%d"].notna().sum() >= 6


def test_clean_text_rewrites_only_what_trimming_changes() -> None:
    values = ["a b", " a", "a ", "a  b", "a\tb", "ab", "", None, "N/A", "x\u3000y", "é b", "a\xa0"] * 10
    text = pd.Series(values, dtype="string")
    expected = text.str.strip().str.replace(parsing.WHITESPACE + "+", " ", regex=True)
    expected = expected.mask((expected == "") | (expected.str.casefold() == "n/a"))
    pd.testing.assert_series_equal(parsing.clean_text(text, {"n/a"}), expected)


def test_random_fixed_width_dates_read_as_pandas_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    n = 4000
    years = rng.choice([1, 399, 400, 1600, 1700, 1900, 1970, 2000, 2023, 2024, 2100, 2400, 9999], n)
    fields = [years, rng.integers(0, 14, n), rng.integers(0, 33, n), rng.integers(0, 25, n), rng.integers(0, 61, n),
              rng.integers(0, 61, n)]
    values = [f"{y:04d}-{m:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}" for y, m, d, h, mi, s in zip(*fields, strict=True)]
    text = pd.Series(values, dtype="string")
    fast = {fmt: parsing.parse_dates(text, fmt) for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S ")}
    monkeypatch.setattr(parsing, "_exact_dates", lambda values, fmt: None)
    for fmt, parsed in fast.items():
        pd.testing.assert_series_equal(parsed, parsing.parse_dates(text, fmt))
    assert 0.3 < fast["%Y-%m-%d %H:%M:%S"].notna().mean() < 0.9  # both readable and unreadable values were met


def test_clean_dates_is_clean_text_then_parse_dates() -> None:
    values = ["2023-01-01 00:07:18", " 2023-01-01 00:07:18", "2023-01-01  00:07:18", "1900-01-01 00:00:00", "n/a",
              "", None, "2023-02-30 00:00:00", "2023-01-01\t00:07:18", "x"] * 3
    text = pd.Series(values, dtype="string", index=range(3, 3 + len(values)))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d  %H:%M:%S", " %Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        for missing in (frozenset(), frozenset({"n/a"}), frozenset({"n/a", "1900-01-01 00:00:00"})):
            cleaned = parsing.clean_text(text, missing)
            present, parsed = parsing.clean_dates(text, fmt, missing)
            np.testing.assert_array_equal(present, cleaned.notna().to_numpy(dtype=bool))
            pd.testing.assert_series_equal(parsed, parsing.parse_dates(cleaned, fmt))
