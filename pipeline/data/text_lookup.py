"""Where each text of a column sits in a fixed set of texts, with the set hashed once.

``pc.index_in`` hashes its value set again on every call: a quarter of a second for a million ids,
paid for every chunk of an activity log checked against them. :class:`TextLookup` hashes the set
once (64-bit FNV-1a over the UTF-8 bytes, finalised as MurmurHash3 does, into an open-addressing
table at most half full), then finds each text by probing from its hash and comparing bytes (so a
hash collision never matches the wrong text). The passes are compiled and release the GIL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit


def text_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets, bytes and validity of a text array, as numpy (cast to large_string: 8-byte offsets)."""
    array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    buffer = array.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return offsets, data, array.is_valid().to_numpy(zero_copy_only=False)


class TextLookup:
    """The positions of texts in ``values`` (no missing; a repeated text is found at its first)."""

    HASH_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)  # the hash bits used; a test sets 0 so that every text collides

    def __init__(self, values: pa.Array) -> None:
        self._offsets, self._data, valid = text_buffers(values)
        if not valid.all():
            raise ValueError("a lookup's values cannot be missing")
        size = 1 << max(4, int(2 * len(valid)).bit_length())  # a power of two over twice the values
        self._slots = _build(self._offsets, self._data, np.uint64(size - 1), size, self.HASH_MASK)

    def positions(self, texts: pa.Array) -> np.ndarray:
        """The position in ``values`` of each text, -1 where it is not there or missing."""
        offsets, data, valid = text_buffers(texts)
        out = np.empty(len(valid), dtype=np.int64)
        _find(offsets, data, valid, self._slots, self._offsets, self._data, out, self.HASH_MASK)
        return out


# A slot is 16 bytes, so a probe reads one cache line: a check word, and the value's position (shifted
# left 24 bits) with its length in the low 24 bits (-1: empty). A text of up to 8 bytes is its own check
# word (its bytes, packed), so it is matched without reading the values' bytes; a longer one's check
# word is its hash, and its bytes are compared when check and length agree.
_SHORT = 8
_LENGTH_BITS = 24
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1


@njit(cache=True, nogil=True, inline="always")
def _hash(data: np.ndarray, start: int, stop: int) -> np.uint64:
    h = np.uint64(14695981039346656037)
    for j in range(start, stop):
        h = (h ^ np.uint64(data[j])) * np.uint64(1099511628211)
    h ^= h >> np.uint64(33)  # MurmurHash3's finaliser: FNV's low bits, the slot, mix poorly
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@njit(cache=True, nogil=True, inline="always")
def _check(data: np.ndarray, start: int, length: int, h: np.uint64) -> np.int64:
    if length > _SHORT:
        return np.int64(h)
    word = np.uint64(0)
    for j in range(length):
        word |= np.uint64(data[start + j]) << np.uint64(8 * j)
    return np.int64(word)


@njit(cache=True, nogil=True)
def _build(offsets: np.ndarray, data: np.ndarray, mask: np.uint64, size: int, hash_mask: np.uint64) -> np.ndarray:
    slots = np.full((size, 2), -1, dtype=np.int64)
    for position in range(len(offsets) - 1):
        start, length = offsets[position], offsets[position + 1] - offsets[position]
        h = _hash(data, start, start + length) & hash_mask
        slot = h & mask
        while slots[slot, 1] != -1:
            slot = (slot + np.uint64(1)) & mask
        slots[slot, 0] = _check(data, start, length, h)
        slots[slot, 1] = (np.int64(position) << _LENGTH_BITS) | min(length, _LENGTH_MASK)
    return slots


@njit(cache=True, nogil=True)
def _find(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, slots: np.ndarray,
          set_offsets: np.ndarray, set_data: np.ndarray, out: np.ndarray, hash_mask: np.uint64) -> None:
    mask = np.uint64(len(slots) - 1)
    for i in range(len(valid)):
        out[i] = -1
        if not valid[i]:
            continue
        start, length = offsets[i], offsets[i + 1] - offsets[i]
        h = _hash(data, start, start + length) & hash_mask
        check, short = _check(data, start, length, h), min(length, _LENGTH_MASK)
        slot = h & mask
        while slots[slot, 1] != -1:  # the values placed from this hash on, in the order they were placed
            entry = slots[slot, 1]
            if slots[slot, 0] == check and (entry & _LENGTH_MASK) == short:
                position = entry >> _LENGTH_BITS
                same = True
                if length > _SHORT:
                    s_start = set_offsets[position]
                    same = set_offsets[position + 1] - s_start == length
                    for j in range(length if same else 0):
                        if data[start + j] != set_data[s_start + j]:
                            same = False
                            break
                if same:
                    out[i] = position
                    break
            slot = (slot + np.uint64(1)) & mask
