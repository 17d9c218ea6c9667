"""Reading values out of CRM text: one set of rules for ingest and for `leadscore inspect`.

Numbers such as "1,200", "$3.5M" or "12%"; yes/no values; dates in a declared format; category
values trimmed and case-folded; placeholders such as "N/A" or "Select" as missing. Every
transform can run once per distinct value (:func:`on_uniques`), which is what makes them cheap
on big exports, where a column holds the same few labels millions of times.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TRUE_VALUES = frozenset({"true", "yes", "y", "1", "1.0", "t", "x", "checked"})
FALSE_VALUES = frozenset({"false", "no", "n", "0", "0.0", "f", "unchecked"})

# A number as CRM exports write it: optional sign and currency, thousands grouped by commas,
# decimals, a k/m/b multiplier or a per cent sign.
_NUMBER = re.compile(
    r"^(?P<sign>[-+])?[$€£]?(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?P<suffix>[kmb])?%?$", re.IGNORECASE)
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9}
# An ISO 8601 date or time, maybe with a UTC offset or Z: read whatever format a column declares (it is
# unambiguous), which is also how a Parquet export's native timestamps and dates read as text.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$",
                       re.IGNORECASE)
# Python's whitespace (every character str.isspace() accepts, 29 of them) spelt as one class that Arrow's
# RE2 engine reads the same way: RE2's own \s misses "\x0b", "\x1c"-"\x1f", "\x85" and the Unicode
# spaces, so pandas would fall back to Python's re, row by row, for a pattern using it. A test checks
# the class against every code point.
WHITESPACE = "[\\x09-\\x0d\\x1c-\\x20\\x85\\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_SPACES = WHITESPACE + "+"
EVENT_TYPE_HASH_CHARS = 8  # hex digits of the hash that names an event type with no Latin spelling


_SAMPLE = 10_000  # rows on_uniques looks at first, on a big column, to tell whether its values repeat


def on_uniques(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn`` applied once per distinct value (as text) and spread back over the rows; missing stays missing."""
    array = None if isinstance(values.dtype, pd.CategoricalDtype) else _arrow_text(values)
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
    elif array is not None:  # Arrow hashes text without a Python object per value
        if len(values) > 4 * _SAMPLE and values.iloc[:: len(values) // _SAMPLE].nunique() * 2 > _SAMPLE:
            return fn(values)
        encoded = pc.dictionary_encode(array)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        uniques = encoded.dictionary
    else:
        if len(values) > 4 * _SAMPLE and values.iloc[:: len(values) // _SAMPLE].nunique() * 2 > _SAMPLE:
            return fn(values.astype("string"))  # mostly distinct (timestamps, ids): factorising would not pay
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if len(uniques) * 4 > len(values):
            return fn(values.astype("string"))
    mapped = fn(pd.Series(uniques, dtype="string")).reset_index(drop=True)
    taken = pd.api.extensions.take(mapped.array, codes, allow_fill=True)
    return pd.Series(taken, index=values.index, dtype=mapped.dtype)


def arrow_text(values: pd.Series) -> pa.Array:
    """Text as one Arrow array (large_string), whatever its storage: no copy if Arrow-backed."""
    array = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def take_text(values: pa.Array, positions: np.ndarray) -> pd.Series:
    """``values`` at ``positions`` as a pandas text series (Arrow-backed); missing where a position is -1."""
    taken = values.take(pa.array(positions, mask=positions < 0)) if len(values) else \
        pa.nulls(len(positions), type=pa.large_string())
    return pd.Series(pd.array(taken.cast(pa.large_string()), dtype=pd.StringDtype("pyarrow")))


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """``values`` as one Arrow text array if it is Arrow-backed text, else None."""
    if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
        return None
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _ascii_arrow(values: pd.Series) -> pa.Array | None:
    """``values`` as one Arrow text array if it is Arrow-backed, non-empty ASCII text, else None: where
    RE2 and Arrow's ASCII kernels read text exactly as Python's re and str methods do."""
    array = _arrow_text(values)
    if array is None or len(array) == 0 or not pc.all(pc.string_is_ascii(array)).as_py():
        return None
    return array


def casefold(values: pd.Series) -> pd.Series:
    """``values.str.casefold()``, on Arrow when the text is ASCII, where case folding is lowercasing A-Z
    (Python's casefold runs row by row: seconds on millions of ids)."""
    text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("string")
    array = _ascii_arrow(text)
    if array is not None:
        return pd.Series(pc.ascii_lower(array), dtype=text.dtype, index=text.index, name=text.name)
    return text.str.casefold()


def fold(values: pd.Series) -> pd.Series:
    """Trimmed, inner whitespace collapsed, case-folded."""
    return casefold(values.astype("string").str.strip().str.replace(_SPACES, " ", regex=True))


def fold_key(values: pd.Series) -> pd.Series:
    """Stage or outcome values folded so "Closed-Won", "closed won " and "CLOSED_WON" are one."""
    return fold(values).str.replace("[-_" + WHITESPACE[1:] + "+", " ", regex=True).str.strip()


def spellings(text: pd.Series, folded: pd.Series) -> dict[str, str]:
    """Per folded value, its most frequent original spelling in ``text`` (ties: the first in sort
    order), so a rep reads "Brazil" where the features hold "brazil"."""
    pairs = pd.DataFrame({"folded": folded.astype("string"), "text": text.astype("string")}).dropna()
    if pairs.empty:
        return {}
    counts = pairs.value_counts().reset_index(name="n").sort_values(["folded", "n", "text"],
                                                                     ascending=[True, False, True], kind="stable")
    first = counts.drop_duplicates("folded")
    return dict(zip(first["folded"].astype(str), first["text"].astype(str), strict=True))


# Text that trimming and collapsing whitespace would change: whitespace at an end, two in a row, or one
# that is not a plain space. Most CRM values have none, and are left as they are without a copy.
_OTHER_WHITESPACE = WHITESPACE.replace("\\x1c-\\x20", "\\x1c-\\x1f")  # every whitespace but " "
_UNCLEAN = f"^{WHITESPACE}|{WHITESPACE}$|{WHITESPACE}{WHITESPACE}|{_OTHER_WHITESPACE}"


def _trimmed(text: pd.Series) -> pd.Series:
    """``text`` trimmed, inner whitespace collapsed to one space; on Arrow text, only the values that
    change are rewritten."""
    array = _arrow_text(text)
    if array is not None and len(array):
        unclean = pc.fill_null(pc.match_substring_regex(array, _UNCLEAN), False).to_numpy(zero_copy_only=False)
        where = np.flatnonzero(unclean)
        if len(where) * 4 < len(text):
            if not len(where):
                return text
            fixed = text.iloc[where].str.strip().str.replace(_SPACES, " ", regex=True)
            out = text.copy()
            out.iloc[where] = fixed.to_numpy()
            return out
    return text.str.strip().str.replace(_SPACES, " ", regex=True)


def clean_text(values: pd.Series, missing: Collection[str] = frozenset()) -> pd.Series:
    """Trimmed text with inner whitespace collapsed; "" and the ``missing`` tokens (folded) become NA."""
    text = _trimmed(values.astype("string"))
    blank = (text == "").fillna(False).to_numpy(dtype=bool)
    if missing:
        # Case folding never shortens a text (each character folds to one or more), so only texts
        # no longer than the longest token can fold to one: fold those, not millions of timestamps.
        short = np.flatnonzero((text.str.len() <= max(len(m) for m in missing)).fillna(False).to_numpy(dtype=bool))
        blank[short] |= text.iloc[short].str.casefold().isin(list(missing)).to_numpy(dtype=bool)
    return text.mask(blank)


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers from CRM text: "1,200" -> 1200, "$3.5M" -> 3500000, "n/a", "lots" or "1,2" -> NaN.
    ASCII text is read on Arrow (RE2 reads :data:`_NUMBER` as Python's re does on ASCII, and its
    text-to-float cast rounds as Python's does); other text through re itself, since \\d also
    matches other scripts' digits there."""
    text = values.astype("string").str.strip().str.replace(" ", "", regex=False)
    array = _ascii_arrow(text)
    if array is not None:
        return pd.Series(_arrow_number(array), index=values.index)
    parts = text.str.extract(_NUMBER)
    number = pd.to_numeric(parts["num"].str.replace(",", "", regex=False), errors="coerce").astype("float64")
    scale = parts["suffix"].str.casefold().map(_SUFFIX).astype("float64").fillna(1.0)
    sign = np.where(parts["sign"].eq("-").fillna(False).astype(bool), -1.0, 1.0)
    return (number * scale * sign).astype("float64").set_axis(values.index)


def _arrow_number(array: pa.Array) -> np.ndarray:
    sign, num, suffix = pc.extract_regex(array, "(?i)" + _NUMBER.pattern).flatten()
    number = pc.cast(pc.replace_substring(num, ",", ""), pa.float64()).to_numpy(zero_copy_only=False)
    scale = np.ones(len(array))
    folded = pc.ascii_lower(suffix)
    for letter, factor in _SUFFIX.items():
        scale[pc.fill_null(pc.equal(folded, letter), False).to_numpy(zero_copy_only=False)] = factor
    negative = pc.fill_null(pc.equal(sign, "-"), False).to_numpy(zero_copy_only=False)
    return number * scale * np.where(negative, -1.0, 1.0)


def parse_boolean(values: pd.Series) -> pd.Series:
    """1.0 for yes/true/1, 0.0 for no/false/0, NaN otherwise."""
    folded = fold(values)
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    out[folded.isin(TRUE_VALUES).fillna(False).astype(bool)] = 1.0
    out[folded.isin(FALSE_VALUES).fillna(False).astype(bool)] = 0.0
    return out


def _utc_naive(parsed: pd.Series) -> pd.Series:
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")


def parse_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Dates in ``fmt`` (None: pandas infers), or in ISO 8601 whatever ``fmt`` says, as naive UTC: a
    value with an offset or Z is converted to UTC (offsets may differ row to row), one without is
    taken as UTC already. Anything else becomes NaT."""
    exact = _exact_dates(values, fmt)
    if exact is None:
        return _read_dates(values, fmt)
    parsed, unread_rows = exact  # what Arrow read exactly is kept; the rest is read the pandas way
    if len(unread_rows):
        parsed.iloc[unread_rows] = _read_dates(values.iloc[unread_rows], fmt).to_numpy()
    return parsed


def clean_dates(values: pd.Series, fmt: str | None, missing: Collection[str] = frozenset()
                ) -> tuple[np.ndarray, pd.Series]:
    """``parse_dates(clean_text(values, missing), fmt)``, and which values hold text once cleaned.
    Values written exactly in ``fmt`` are read as they are: cleaning would leave them unchanged, when
    ``fmt`` itself is clean and no missing token is written in it. Only the rest are cleaned."""
    exact = _exact_dates(values, fmt) if fmt is not None and not re.search(_UNCLEAN, fmt) else None
    if exact is not None:
        width = len(re.sub(r"%[mdHMS]", "00", fmt.replace("%Y", "0000"))) if fmt else 0
        tokens = [m for m in missing if len(m) == width]
        if tokens:  # a token spelt as a date is missing, not that date: read it the slow way
            parsed, rest = exact
            hit = values.str.casefold().isin(tokens).fillna(False).to_numpy(dtype=bool)
            exact = parsed, np.union1d(rest, np.flatnonzero(hit))
    if exact is None:
        text = clean_text(values, missing)
        return text.notna().to_numpy(dtype=bool), parse_dates(text, fmt)
    parsed, rest = exact
    present = np.ones(len(values), dtype=bool)
    if len(rest):
        text = clean_text(values.iloc[rest], missing)
        present[rest] = text.notna().to_numpy(dtype=bool)
        parsed.iloc[rest] = parse_dates(text, fmt).to_numpy()
    return present, parsed


def _read_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    text = values.astype("string").str.strip()
    parsed = _utc_naive(pd.to_datetime(text, format=fmt, errors="coerce", utc=True))
    unread = np.flatnonzero((text.notna() & parsed.isna()).to_numpy(dtype=bool))
    candidates = text.iloc[unread]
    iso = candidates.str.fullmatch(_ISO_DATE).fillna(False).to_numpy(dtype=bool)
    if iso.any():
        spaced = candidates[iso].str.replace(r"\s+(?=[zZ+-]\d*$)", "", regex=True)  # "10:00 +02" -> "10:00+02"
        iso_parsed = _utc_naive(pd.to_datetime(spaced, format="ISO8601", errors="coerce", utc=True))
        parsed.iloc[unread[iso]] = iso_parsed.to_numpy()
    return parsed


_FIXED_WIDTH = re.compile(r"(?:%[YmdHMS]|[^%])+")


def _exact_dates(values: pd.Series, fmt: str | None) -> tuple[pd.Series, np.ndarray] | None:
    """For a format of zero-padded numbers and literal characters with a year, month and day (e.g.
    "%Y-%m-%d %H:%M:%S", each field once), on Arrow text: the values written exactly in it and naming a
    real instant, read in one compiled pass (:mod:`pipeline.data.fixed_dates`) as the pandas reading
    gives them, and the positions of the rest (NaT so far, for the pandas reading: spaces, offsets,
    other spellings). None: not such a case. Millions of timestamps take milliseconds; pandas, seconds."""
    if fmt is None or not _FIXED_WIDTH.fullmatch(fmt) or not fmt.isascii() or \
            not all(fmt.count(d) == 1 for d in ("%Y", "%m", "%d")) or \
            any(fmt.count(d) > 1 for d in ("%H", "%M", "%S")):
        return None
    array = _arrow_text(values)
    if array is None or not len(array):
        return None
    from pipeline.data import fixed_dates  # compiled on first use: imported only where dates are read

    micros, exact = fixed_dates.read(array, fixed_dates.pattern(fmt))
    return pd.Series(micros.view("datetime64[us]"), index=values.index), np.flatnonzero(~exact)


def apply_aliases(values: pd.Series, aliases: dict[str, str]) -> pd.Series:
    """Replace folded values by their alias target (also folded): "technolgy" -> "technology"."""
    if not aliases:
        return values
    table = {str(k).strip().casefold(): str(v).strip().casefold() for k, v in aliases.items()}
    return values.replace(table)


def _event_name(folded: str) -> str:
    """One folded event type as a snake_case name; see :func:`fold_event_type`."""
    latin = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    name = re.sub(r"[^0-9a-z]+", "_", latin).strip("_")
    if name and latin.isascii() and re.search(r"[0-9a-z]", latin):
        return name
    digest = hashlib.blake2b(folded.encode("utf-8"), digest_size=EVENT_TYPE_HASH_CHARS // 2).hexdigest()
    return f"{name or 'type'}_{digest}"


def fold_event_type(values: pd.Series) -> pd.Series:
    """Event types as snake_case names: "Pricing Page View" -> "pricing_page_view", "Café visit" ->
    "cafe_visit". A type with letters that have no Latin spelling (Japanese, Cyrillic, emoji) or no
    letter at all keeps its Latin part and gains a short stable hash of the whole type ("価格 page" ->
    "page_1a2b3c4d", "予約" -> "type_5e6f7a8b"), so two different types never share a name. Missing
    (or empty) stays missing."""
    folded = fold(values)
    names = [None if pd.isna(v) or not str(v) else _event_name(str(v)) for v in folded]
    return pd.Series(names, index=values.index, dtype="string")
