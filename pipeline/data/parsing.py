"""Reading values out of CRM text: one set of rules for ingest and for `leadscore inspect`.

Numbers such as "1,200", "$3.5M" or "12%"; yes/no values; dates in a declared format; category
values trimmed and case-folded; placeholders such as "N/A" or "Select" as missing. Every
transform can run once per distinct value (:func:`on_uniques`), which is what makes them cheap
on big exports, where a column holds the same few labels millions of times.
"""

from __future__ import annotations

import re
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


def parse_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Dates in ``fmt`` (None: pandas infers); anything else becomes NaT."""
    return pd.to_datetime(values.astype("string").str.strip(), format=fmt, errors="coerce").astype("datetime64[us]")


def apply_aliases(values: pd.Series, aliases: dict[str, str]) -> pd.Series:
    """Replace folded values by their alias target (also folded): "technolgy" -> "technology"."""
    if not aliases:
        return values
    table = {str(k).strip().casefold(): str(v).strip().casefold() for k, v in aliases.items()}
    return values.replace(table)


def fold_event_type(values: pd.Series) -> pd.Series:
    """"Pricing Page View" -> "pricing_page_view"."""
    return fold(values).str.replace(r"[^0-9a-z]+", "_", regex=True).str.strip("_")
