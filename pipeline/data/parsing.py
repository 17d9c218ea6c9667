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
EVENT_TYPE_HASH_CHARS = 8  # hex digits of the hash that names an event type with no Latin spelling


def on_uniques(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn`` applied once per distinct value (as text) and spread back over the rows; missing stays missing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if len(uniques) * 4 > len(values):
            return fn(values.astype("string"))
    mapped = fn(pd.Series(uniques, dtype="string")).reset_index(drop=True)
    taken = pd.api.extensions.take(mapped.array, codes, allow_fill=True)
    return pd.Series(taken, index=values.index, dtype=mapped.dtype)


def fold(values: pd.Series) -> pd.Series:
    """Trimmed, inner whitespace collapsed, case-folded."""
    return values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def fold_key(values: pd.Series) -> pd.Series:
    """Stage or outcome values folded so "Closed-Won", "closed won " and "CLOSED_WON" are one."""
    return fold(values).str.replace(r"[-_\s]+", " ", regex=True).str.strip()


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


def clean_text(values: pd.Series, missing: Collection[str] = frozenset()) -> pd.Series:
    """Trimmed text with inner whitespace collapsed; "" and the ``missing`` tokens (folded) become NA."""
    text = values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return text.mask(text.str.casefold().isin(list(missing)) | (text == ""))


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers from CRM text: "1,200" -> 1200, "$3.5M" -> 3500000, "n/a", "lots" or "1,2" -> NaN."""
    text = values.astype("string").str.strip().str.replace(" ", "", regex=False)
    parts = text.str.extract(_NUMBER)
    number = pd.to_numeric(parts["num"].str.replace(",", "", regex=False), errors="coerce").astype("float64")
    scale = parts["suffix"].str.casefold().map(_SUFFIX).astype("float64").fillna(1.0)
    sign = np.where(parts["sign"].eq("-").fillna(False).astype(bool), -1.0, 1.0)
    return (number * scale * sign).astype("float64").set_axis(values.index)


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
