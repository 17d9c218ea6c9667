"""TextLookup finds texts as a hash lookup would, whatever the hashes collide on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.data import text_lookup
from pipeline.data.text_lookup import TextLookup


def _texts(rng: np.random.Generator, n: int) -> list[str | None]:
    alphabet = ["a", "b", "Z", "0", " ", "é", "価", "😀"]
    return [None if rng.random() < 0.05 else "".join(rng.choice(alphabet, rng.integers(0, 5))) for _ in range(n)]


@pytest.mark.parametrize("collide", [False, True])
def test_positions_equal_index_in(collide: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if collide:  # every text hashes alike: only the bytes (packed, or compared) tell them apart
        monkeypatch.setattr(text_lookup.TextLookup, "HASH_MASK", np.uint64(0))
    rng = np.random.default_rng(1)
    values = pa.array(sorted({t for t in _texts(rng, 400) if t is not None}))
    texts = pa.array(_texts(rng, 3000), type=pa.string()).slice(7)  # an offset into the buffers too
    expected = pc.fill_null(pc.index_in(texts, value_set=values, skip_nulls=True), -1).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(TextLookup(values).positions(texts), expected)
    assert (expected >= 0).any() and (expected < 0).any()
    np.testing.assert_array_equal(TextLookup(pa.array([], pa.string())).positions(texts), -1)


def test_missing_values_are_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        TextLookup(pa.array(["a", None]))


def test_short_texts_are_told_apart_by_length_and_every_byte() -> None:
    """Texts of up to 8 bytes are matched on their packed bytes and length: a trailing NUL, a prefix,
    the empty text and 8 bytes against 9 are different texts."""
    values = pa.array(["a", "a\x00", "", "abcdefgh", "abcdefghi", "\x00", "é", "abcdefgi"])
    texts = pa.array(["a\x00", "a", "", "\x00\x00", "abcdefghi", "abcdefgh", "abcdefg", "é", "e", "abcdefgi", None])
    expected = [1, 0, 2, -1, 4, 3, -1, 6, -1, 7, -1]
    np.testing.assert_array_equal(TextLookup(values).positions(texts), expected)
    repeated = TextLookup(pa.array(["x", "yy", "x", "yy"]))  # a repeated text is found at its first
    np.testing.assert_array_equal(repeated.positions(pa.array(["yy", "x"])), [1, 0])
