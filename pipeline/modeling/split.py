"""How labeled records are split into train / valid / test: by time when there are dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SPLIT_TIME = "time"
SPLIT_STRATIFIED = "stratified"
SPLITS = ("train", "valid", "test")


def split_rows(
    labeled: pd.DataFrame, *, valid_fraction: float, test_fraction: float, seed: int,
) -> tuple[pd.Series, str]:
    """'train' / 'valid' / 'test' for each labeled row, and how it was split.

    By time when the rows have decision dates: the oldest train, the newest are the test set
    (ties broken by ``record_id`` so every run splits the same way). When every as-of date is
    the same (no decision date in the export) there is no time order, so the split is random,
    stratified by outcome and seeded.
    """
    as_of = pd.to_datetime(labeled["as_of"]).to_numpy(dtype="datetime64[us]").view(np.int64)
    if len(as_of) and (as_of != as_of[0]).any():
        n = len(as_of)
        n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
        code = np.zeros(n, dtype=np.intp)  # positions in SPLITS
        code[_newest(as_of, labeled["record_id"], n_test + n_valid)] = 1
        code[_newest(as_of, labeled["record_id"], n_test)] = 2
        return pd.Series(np.array(SPLITS, dtype=object)[code], index=labeled.index, dtype="object"), SPLIT_TIME
    split = pd.Series("train", index=labeled.index, dtype="object")
    rng = np.random.default_rng(seed)
    for _, group in labeled.groupby("label", sort=True):
        index = group.sort_values("record_id", kind="stable").index.to_numpy()
        index = index[rng.permutation(len(index))]
        n_test, n_valid = round(len(index) * test_fraction), round(len(index) * valid_fraction)
        split.loc[index[:n_test]] = "test"
        split.loc[index[n_test:n_test + n_valid]] = "valid"
    return split, SPLIT_STRATIFIED


def _newest(as_of: np.ndarray, record_id: pd.Series, k: int) -> np.ndarray:
    """Positions of the ``k`` newest rows by (as-of date, ``record_id``), as a sort of both would give.

    Only the rows on the date where the cut falls need their ids compared: the others are in or out
    by date alone (a full sort of a million string ids took 0.2 s)."""
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= len(as_of):
        return np.arange(len(as_of))
    cut = np.partition(as_of, len(as_of) - k)[len(as_of) - k]  # the as-of date of the k-th newest row
    newer = np.flatnonzero(as_of > cut)
    tied = np.flatnonzero(as_of == cut)
    ids = pa.array(record_id.iloc[tied].astype("string"), type=pa.large_string())
    by_id = pc.sort_indices(ids).to_numpy()  # ascending: the largest ids are the newest among the tied
    return np.concatenate([newer, tied[by_id[len(tied) - (k - len(newer)):]]])


class MatrixSplit:
    """The closed records of a feature matrix split as :func:`split_rows` splits them, held as row
    positions: each slice is taken from the matrix once, on demand, never through a copy of every
    closed row (at 5M leads such a copy was gigabytes)."""

    KEYS = ("record_id", "as_of", "label")

    def __init__(self, matrix: pd.DataFrame, *, valid_fraction: float, test_fraction: float, seed: int,
                 rows: np.ndarray | None = None) -> None:
        """``rows``: only the matrix's rows at these positions, in this order (default: every row)."""
        self.matrix = matrix
        labeled = matrix["label"].notna().to_numpy()
        self.positions = np.flatnonzero(labeled) if rows is None else rows[labeled[rows]]
        self.keys = matrix[list(self.KEYS)].iloc[self.positions]  # the closed records' split keys only
        self.slice_of, self.method = split_rows(self.keys, valid_fraction=valid_fraction,
                                                test_fraction=test_fraction, seed=seed)

    def positions_of(self, name: str) -> np.ndarray:
        """The matrix's row positions of slice ``name``, in matrix order (or in the order of ``rows``)."""
        return self.positions[(self.slice_of == name).to_numpy()]

    def rows(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The matrix's rows of slice ``name`` (all columns, or ``columns``), in :meth:`positions_of` order."""
        frame = self.matrix if columns is None else self.matrix[columns]
        return frame.iloc[self.positions_of(name)]


def model_columns(matrix: pd.DataFrame, names: list[str], *extra: str) -> list[str]:
    """``names`` (the model's features) and ``extra``, those the matrix has: what a slice is taken
    with when only the model's inputs are read (a missing feature is then reported by prepare_matrix)."""
    return [c for c in [*names, *extra] if c in matrix.columns]
