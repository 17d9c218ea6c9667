"""Dates written exactly in a fixed-width format, read from Arrow's text buffers in one compiled pass.

A format such as ``%Y-%m-%d %H:%M:%S`` is a pattern of byte slots: a digit of one of the six
fields, or a literal byte. A value is read when it has the pattern's width, every digit slot holds
an ASCII digit, every literal matches, and the fields name a real instant of the proleptic Gregorian
calendar (month 1-12, a day the month has, hour <= 23, minute and second <= 59). Anything else is
left to the general reading. The pass releases the GIL, so chunks are read on threads in parallel.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
from numba import njit

from pipeline.data.text_lookup import text_buffers

FIELDS = ("%Y", "%m", "%d", "%H", "%M", "%S")
DIGITS = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
NAT = np.iinfo(np.int64).min


def pattern(fmt: str) -> np.ndarray:
    """Per byte slot of ``fmt``, the field a digit belongs to (0-5, in ``FIELDS`` order) or, for a
    literal, -1 - its byte (so a literal slot is negative)."""
    slots: list[int] = []
    for piece in (p for p in re.split(r"(%[YmdHMS])", fmt) if p):
        if piece in DIGITS:
            slots.extend([FIELDS.index(piece)] * DIGITS[piece])
        else:
            slots.extend(-1 - byte for byte in piece.encode("ascii"))
    return np.array(slots, dtype=np.int64)


def read(array: pa.Array, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since 1970 of each value of ``array`` (large_string) written exactly in ``slots``
    (NaT elsewhere), and which values those are."""
    offsets, data, valid = text_buffers(array)
    micros = np.empty(len(array), dtype=np.int64)
    exact = np.empty(len(array), dtype=np.bool_)
    _read(offsets, data, valid, slots, micros, exact)
    return micros, exact


@njit(cache=True, nogil=True)
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - 1 if month <= 2 else year
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@njit(cache=True, nogil=True)
def _read(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, slots: np.ndarray,
          micros: np.ndarray, exact: np.ndarray) -> None:
    width = len(slots)
    nat = np.iinfo(np.int64).min
    fields = np.zeros(6, dtype=np.int64)
    for i in range(len(valid)):
        micros[i] = nat
        exact[i] = False
        start = offsets[i]
        if not valid[i] or offsets[i + 1] - start != width:
            continue
        fields[:] = 0
        good = True
        for j in range(width):
            byte = np.int64(data[start + j])
            slot = slots[j]
            if slot >= 0:
                digit = byte - 48
                if digit < 0 or digit > 9:
                    good = False
                    break
                fields[slot] = fields[slot] * 10 + digit
            elif byte != -1 - slot:
                good = False
                break
        if not good:
            continue
        year, month, day, hour, minute, second = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
        if month < 1 or month > 12 or day < 1 or day > _days_in_month(year, month) or hour > 23 \
                or minute > 59 or second > 59:
            continue
        days = _days_from_civil(year, month, day)
        micros[i] = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000)
        exact[i] = True
