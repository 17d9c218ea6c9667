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

    def __init__(self, values: pa.Array) -> None:
        self._offsets, self._data, valid = text_buffers(values)
        if not valid.all():
            raise ValueError("a lookup's values cannot be missing")
        self._hashes = _hashes(self._offsets, self._data, valid)
        size = 1 << max(4, int(2 * len(valid)).bit_length())  # a power of two over twice the values
        self._slots = _build(self._hashes, np.uint64(size - 1), size)

    def positions(self, texts: pa.Array) -> np.ndarray:
        """The position in ``values`` of each text, -1 where it is not there or missing."""
        offsets, data, valid = text_buffers(texts)
        out = np.empty(len(valid), dtype=np.int64)
        _find(offsets, data, valid, _hashes(offsets, data, valid), self._slots, self._hashes, self._offsets,
              self._data, out)
        return out


@njit(cache=True, nogil=True)
def _hashes(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.zeros(len(valid), dtype=np.uint64)
    for i in range(len(valid)):
        if valid[i]:
            h = np.uint64(14695981039346656037)
            for j in range(offsets[i], offsets[i + 1]):
                h = (h ^ np.uint64(data[j])) * np.uint64(1099511628211)
            h ^= h >> np.uint64(33)  # MurmurHash3's finaliser: FNV's low bits, the slot, mix poorly
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xC4CEB9FE1A85EC53)
            out[i] = h ^ (h >> np.uint64(33))
    return out


@njit(cache=True, nogil=True)
def _build(hashes: np.ndarray, mask: np.uint64, size: int) -> np.ndarray:
    slots = np.full(size, -1, dtype=np.int64)  # the position of the value in each slot, -1: empty
    for position in range(len(hashes)):
        slot = hashes[position] & mask
        while slots[slot] != -1:
            slot = (slot + np.uint64(1)) & mask
        slots[slot] = position
    return slots


@njit(cache=True, nogil=True)
def _find(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, hashes: np.ndarray, slots: np.ndarray,
          set_hashes: np.ndarray, set_offsets: np.ndarray, set_data: np.ndarray, out: np.ndarray) -> None:
    mask = np.uint64(len(slots) - 1)
    for i in range(len(valid)):
        out[i] = -1
        if not valid[i]:
            continue
        start, length = offsets[i], offsets[i + 1] - offsets[i]
        slot = hashes[i] & mask
        while slots[slot] != -1:  # the values placed from this hash on, in the order they were placed
            position = slots[slot]
            s_start = set_offsets[position]
            if set_hashes[position] == hashes[i] and set_offsets[position + 1] - s_start == length:
                same = True
                for j in range(length):
                    if data[start + j] != set_data[s_start + j]:
                        same = False
                        break
                if same:
                    out[i] = position
                    break
            slot = (slot + np.uint64(1)) & mask
