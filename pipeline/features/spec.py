"""The feature spec: what each model column is, where it comes from, and what a rep calls it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

Kind = Literal["numeric", "categorical"]
Role = Literal["firmographic", "contact", "intent", "qualification", "deal"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str       # column in the feature matrix
    kind: Kind
    role: Role
    source: str     # the canonical field a rep knows it by
    label: str      # rep-facing wording, e.g. "Pricing page visits in the last 7 days"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def categorical_names(specs: list[FeatureSpec]) -> list[str]:
    return [s.name for s in specs if s.kind == "categorical"]


def text_from_codes(codes: np.ndarray, labels: Sequence[str | None], index: pd.Index | None = None) -> pd.Series:
    """A text column (pandas ``str``) from integer codes into ``labels``; a code of -1 or a label of
    None is missing. Built as an Arrow dictionary: no Python string per row, so a million rows cost
    milliseconds where an object array costs a second."""
    codes = np.asarray(codes)
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    text = pa.DictionaryArray.from_arrays(indices, pa.array(list(labels), type=pa.large_string()))
    return pd.Series(text.cast(pa.large_string()), dtype="str", index=index)
