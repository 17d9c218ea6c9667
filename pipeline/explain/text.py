"""Column-wise text: strings joined and JSON arrays built for many leads at once, each distinct
value escaped once (a Python loop per lead costs seconds at a million rows)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd


def join_strings(*pieces: Any) -> np.ndarray:
    """Element-wise concatenation of strings and object arrays of strings."""
    out: Any = pieces[0]
    for piece in pieces[1:]:
        out = out + piece
    return np.asarray(out, dtype=object)


def json_strings(values: np.ndarray) -> np.ndarray:
    """Each value as a JSON string literal (None/NaN as null), escaping every distinct value once."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    escaped = np.array([json.dumps(str(u)) for u in uniques] + ["null"], dtype=object)
    return escaped[codes]


def json_arrays(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Per row, ``[item, item, ...]`` from (present, item) columns whose filled slots come first."""
    body = np.full(n, "", dtype=object)
    for s, (present, item) in enumerate(parts):
        piece = item if s == 0 else ", " + item
        body = np.where(present, body + piece, body)
    return "[" + body + "]"


def days_ago(days: float) -> str:
    """How long ago, as a rep says it: "today", "yesterday", "3 days ago"."""
    n = int(days)
    return "today" if n <= 0 else "yesterday" if n == 1 else f"{n:,} days ago"


def counted(n: int, one: str, many: str) -> str:
    """``n`` things with the article or number a rep would use: "a demo request", "an email open",
    "2 pricing-page visits" (``one`` and ``many``: the singular and plural nouns)."""
    if n == 1:
        return ("an " if one[:1].lower() in "aeiou" else "a ") + one
    return f"{n:,} {many}"


def joined(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
