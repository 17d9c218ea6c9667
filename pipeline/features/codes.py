"""Text feature columns built from integer codes, without a Python string per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa


def text_from_codes(codes: np.ndarray, labels: Sequence[str | None], index: pd.Index | None = None) -> pd.Series:
    """A text column (pandas ``str``) from integer codes into ``labels``; a code of -1 or a label of
    None is missing. Built as an Arrow dictionary: no Python string per row, so a million rows cost
    milliseconds where an object array costs a second."""
    codes = np.asarray(codes)
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    text = pa.DictionaryArray.from_arrays(indices, pa.array(list(labels), type=pa.large_string()))
    return pd.Series(text.cast(pa.large_string()), dtype="str", index=index)
