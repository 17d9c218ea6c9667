"""The column-wise quarantine text equals the row-by-row form it replaces."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.data.quarantine import json_records, reason_kind, reason_kinds

WORDS = ["a", "l0001", "", " x ", 'q"uote', "back\\slash", "new\nline", "tab\t", "\x00\x1f", "Ж", "😀", "o'brien",
         "2023-01-02 10:00", "٣٤", "del\x7f", "line\u2028sep", None]


def _text(rng: np.random.Generator, n: int, storage: str) -> pd.Series:
    return pd.Series([WORDS[i] for i in rng.integers(0, len(WORDS), n)], dtype=pd.StringDtype(storage))


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_json_records_are_json_dumps_of_each_record(storage: str) -> None:
    rng = np.random.default_rng(3)
    n = 500
    raw = pd.DataFrame({"id": _text(rng, n, storage), "wéird \"name\"": _text(rng, n, storage),
                        "number": rng.normal(size=n).round(2), "count": pd.array(rng.integers(0, 3, n), dtype="Int64"),
                        "when": pd.to_datetime(rng.integers(0, 10**9, n), unit="s")},
                       index=rng.permutation(n) + 2)
    raw.loc[raw.index[::7], "number"] = np.nan
    raw.loc[raw.index[::5], "count"] = pd.NA
    raw.loc[raw.index[::9], "when"] = pd.NaT
    expected = [json.dumps(r, ensure_ascii=False, default=str) for r in raw.to_dict(orient="records")]
    assert json_records(raw) == expected
    assert json_records(raw.iloc[:0]) == []
    assert json_records(raw[["id"]].iloc[:3]) == expected_of(raw[["id"]].iloc[:3])


def expected_of(raw: pd.DataFrame) -> list[str]:
    return [json.dumps(r, ensure_ascii=False, default=str) for r in raw.to_dict(orient="records")]


@pytest.mark.parametrize("words", [WORDS[:-1], [w for w in WORDS[:-1] if w is not None and w.isascii()]])
def test_reason_kinds_count_reason_kind_of_each_reason(words: list[str]) -> None:
    rng = np.random.default_rng(5)
    reasons = pd.Series([f"event_key '{words[i]}' not found in leads" if i % 3 else f"date {words[i]}-12:01 x"
                         for i in rng.integers(0, len(words), 3000)])
    expected = reasons.map(reason_kind).value_counts()
    assert reason_kinds(reasons).sort_index().to_dict() == expected.sort_index().to_dict()
    assert reason_kind("unparseable date '2023-13-01' (expected %Y-%m-%d) 12") == \
        re.sub(r"\d[\d:-]*", "N", "unparseable date '…' (expected %Y-%m-%d) 12")
