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
