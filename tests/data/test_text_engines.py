"""Ingest's text rules run on Arrow's RE2 engine where it reads a pattern exactly as Python's re does,
and on re elsewhere. Rule checked here: whichever engine runs, every value comes out as the pure-Python
reading of the rule would give it (whitespace in any script, numbers in any spelling)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.data import parsing
from pipeline.data.parsing import WHITESPACE, casefold, clean_text, fold, fold_key, parse_number

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
NEAR_SPACES = ["\u200b", "\ufeff", "\u180e", "\u00ad", "\x00", "\x7f"]  # look blank, are not whitespace


def test_the_whitespace_class_is_pythons_whitespace_at_every_code_point() -> None:
    pattern = re.compile(WHITESPACE)
    wrong = [hex(c) for c in range(sys.maxunicode + 1) if bool(pattern.fullmatch(chr(c))) != chr(c).isspace()]
    assert wrong == [] and len(SPACES) == 29


def test_the_whitespace_rules_run_on_arrow_not_row_by_row() -> None:
    text = pd.Series(["a  b"], dtype="string")
    assert not text.array._needs_python_regex(WHITESPACE + "+")


def _random_text(rng: np.random.Generator, n: int) -> list[str | None]:
    alphabet = [*SPACES, *NEAR_SPACES, "a", "B", "é", "Ж", "価", "😀", "-", "_", "1", ",", "$", "N/A"]
    out: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.05:
            out.append(None)
            continue
        out.append("".join(alphabet[i] for i in rng.integers(0, len(alphabet), rng.integers(0, 9))))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_text_is_cleaned_and_folded_as_python_would_on_any_script(seed: int) -> None:
    values = _random_text(np.random.default_rng(seed), 3000)
    series = pd.Series(values, dtype="string")

    def collapse(v: str) -> str:
        return re.sub(r"\s+", " ", v.strip())

    expected_clean = [None if v is None or collapse(v).casefold() in ("", "n/a") else collapse(v) for v in values]
    got = clean_text(series, {"n/a"})
    assert [None if pd.isna(v) else v for v in got] == expected_clean
    assert [None if pd.isna(v) else v for v in fold(series)] == [
        None if v is None else collapse(v).casefold() for v in values]
    assert [None if pd.isna(v) else v for v in fold_key(series)] == [
        None if v is None else re.sub(r"[-_\s]+", " ", collapse(v).casefold()).strip() for v in values]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("script", ["ascii", "any"])
def test_numbers_read_the_same_on_either_engine(seed: int, script: str, monkeypatch) -> None:
    rng = np.random.default_rng(100 + seed)
    pieces = ["-", "+", "$", "€", "1", "2", "0", "9", ",", ".", "k", "M", "b", "%", " ", "x", "e"]
    if script == "any":
        pieces += ["٣", "١٢", "Ж"]
    values: list[str | None] = [
        None if rng.random() < 0.03 else "".join(pieces[i] for i in rng.integers(0, len(pieces), rng.integers(0, 8)))
        for _ in range(4000)]
    values += ["1,200", "$3.5M", "12%", "-7k", "1,234,567.89", "1,2", "n/a"]
    series = pd.Series(values, dtype="string")
    got = parse_number(series).to_numpy()
    monkeypatch.setattr(parsing, "_ascii_arrow", lambda text: None)  # Python's re only
    want = parse_number(series).to_numpy()
    np.testing.assert_array_equal(got, want)
    assert parse_number(pd.Series(["1,200", "$3.5M", "-7k", "12%"], dtype="string")).tolist() == [
        1200.0, 3500000.0, -7000.0, 12.0]
    assert np.isfinite(got).sum() > 50  # the random spellings include real numbers, not only rejects


def test_record_links_are_quoted_as_urllib_would() -> None:
    from urllib.parse import quote

    from pipeline.data.ingest import _links

    rng = np.random.default_rng(11)
    alphabet = ["a", "Z", "0", "-", "_", ".", "~", " ", "/", "?", "&", "ü", "価", "😀", "%", "#"]
    ids = pd.Series(["".join(alphabet[i] for i in rng.integers(0, len(alphabet), rng.integers(0, 7)))
                     for _ in range(2000)], dtype="string")
    for template in ("https://crm.example/deal/{record_id}", "x?id={record_id}&b={record_id}", "no id"):
        assert _links(template, ids).tolist() == [template.replace("{record_id}", quote(i, safe="")) for i in ids]


def test_case_folding_never_shortens_a_character() -> None:
    """clean_text folds only texts no longer than the longest missing token; that is exact because
    no character folds to nothing."""
    assert min(len(chr(c).casefold()) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000) == 1


def test_missing_tokens_are_found_in_any_case_and_spelling() -> None:
    values = pd.Series(["N/A", "n/a ", "STRASSE", "Straße", "İ", "unknown value", "Unknown", None, "  "],
                       dtype="string")
    got = clean_text(values, {"n/a", "strasse", "unknown", "i̇"})
    assert [None if pd.isna(v) else v for v in got] == [None, None, None, None, None, "unknown value", None, None, None]


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_case_folding_on_either_engine_is_pythons(storage: str) -> None:
    rng = np.random.default_rng(5)
    for alphabet in (["A", "b", "Z", "0", "-", " ", "L"], ["A", "ß", "İ", "Σ", "ﬃ", "x", "Ж"]):
        values = pd.Series([None if rng.random() < 0.05 else "".join(rng.choice(alphabet, rng.integers(0, 6)))
                            for _ in range(2000)], dtype=pd.StringDtype(storage))
        pd.testing.assert_series_equal(casefold(values), values.str.casefold())


def test_interim_keys_become_the_same_categoricals() -> None:
    from pipeline.data.ingest import _Dictionary

    rng = np.random.default_rng(9)
    words = ["l0001", "l0002", "ж", "", "x y", None]
    column = pd.Series([words[i] for i in rng.integers(0, len(words), 3000)], dtype="string", name="event_key",
                       index=pd.RangeIndex(5, 3005))
    for levels in (["", "l0001", "l0002", "x y", "ж"], ["l0002"]):
        categories = pd.Index(levels, dtype="string")
        expected = pd.Series(pd.Categorical(column, categories=categories), index=column.index, name="event_key")
        pd.testing.assert_series_equal(_Dictionary(categories).encode(column), expected)
        pd.testing.assert_series_equal(_Dictionary(categories).encode(column.astype("category")), expected)
