"""How a quarantined row is written down: its raw row as JSON and its reason grouped by kind.

Both are column-wise, so a quarantine of hundreds of thousands of rows (an activity log keyed to a
table the export left out, say) costs a hash per column, not a JSON encoder and two regular
expressions per row. Each gives exactly what the row-by-row form gives: ``json.dumps`` of the
row's ``to_dict`` record, and :func:`reason_kind` of each reason.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_QUOTED, _NUMBER = r"'[^']*'", r"\d[\d:-]*"


def reason_kind(reason: str) -> str:
    """The reason without its values, so the report groups like with like."""
    return re.sub(_NUMBER, "N", re.sub(_QUOTED, "'…'", str(reason)))


def reason_kinds(reasons: pd.Series) -> pd.Series:
    """How many reasons there are of each kind (:func:`reason_kind`), in no particular order."""
    text = reasons.astype(str)
    array = pa.array(text.to_numpy(dtype=object), type=pa.large_string())
    if len(array) and pc.all(pc.string_is_ascii(array)).as_py():  # RE2's \d is Python's on ASCII
        kinds = pc.replace_substring_regex(pc.replace_substring_regex(array, _QUOTED, "'…'"), _NUMBER, "N")
        return pd.Series(kinds.to_numpy(zero_copy_only=False)).value_counts()
    counts = text.value_counts(sort=False)
    return pd.Series(counts.to_numpy(), index=counts.index.map(reason_kind)).groupby(level=0, sort=False).sum()


def json_records(raw: pd.DataFrame) -> list[str]:
    """Each row of ``raw`` as ``json.dumps(row, ensure_ascii=False, default=str)`` of its record."""
    if raw.empty or not len(raw.columns):
        return [json.dumps(r, ensure_ascii=False, default=str) for r in raw.to_dict(orient="records")]
    parts: list[pa.Array | pa.Scalar] = []
    for i, name in enumerate(raw.columns):
        parts.append(_text(("{" if i == 0 else ", ") + json.dumps(str(name), ensure_ascii=False) + ": "))
        parts.append(_json_values(raw.iloc[:, i]))
    parts.append(_text("}"))
    return pc.binary_join_element_wise(*parts, _text("")).to_pylist()


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, type=pa.large_string())


def _json_values(column: pd.Series) -> pa.Array:
    """Each value of one column as JSON text. For text, ``json.dumps`` (ensure_ascii off) escapes only
    quotes, backslashes and control characters, so a value without them is itself in quotes; only the
    others are encoded one by one."""
    if isinstance(column.dtype, pd.StringDtype):  # str or missing (None in the record)
        array = pa.array(column.array, type=pa.large_string(), from_pandas=True)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        quoted = pc.binary_join_element_wise(_text('"'), array, _text('"'), _text(""))
        escaped = pc.fill_null(pc.match_substring_regex(array, r'[\x00-\x1f"\\]'), False)
        if pc.any(escaped).as_py():
            special = [json.dumps(v, ensure_ascii=False) for v in array.filter(escaped).to_pylist()]
            quoted = pc.replace_with_mask(quoted, escaped, pa.array(special, type=pa.large_string()))
        return pc.fill_null(quoted, _text("null"))
    values = column.to_frame().to_dict(orient="records")
    return pa.array([json.dumps(next(iter(v.values())), ensure_ascii=False, default=str) for v in values],
                    type=pa.large_string())

