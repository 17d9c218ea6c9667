"""Firmographic enrichment: canonical industry, region from country, size and revenue bands, ICP fit.

The industry and region tables are YAML files beside this module (``industries.yaml``,
``regions.yaml``), so a team extends them without touching code. The ICP is declared in params
(``icp:``); every record gets the share of ICP criteria it matches, and which ones.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.config import IcpParams
from pipeline.data.parsing import fold, on_uniques
from pipeline.features.codes import text_from_codes

INDUSTRIES_FILE = Path(__file__).with_name("industries.yaml")  # canonical industry -> spellings seen
REGIONS_FILE = Path(__file__).with_name("regions.yaml")  # sales region -> countries
EMPLOYEE_BANDS = ((0, "1-10"), (11, "11-50"), (51, "51-200"), (201, "201-1000"), (1001, "1001-5000"),
                  (5001, "5001+"))
REVENUE_BANDS = ((0, "<1M"), (1e6, "1M-10M"), (1e7, "10M-100M"), (1e8, "100M-1B"), (1e9, "1B+"))


@cache
def _lookup(path: Path) -> dict[str, str]:
    """variant -> canonical, from a {canonical: [variants]} YAML table (canonical names map to themselves)."""
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for canonical, variants in table.items():
        out[str(canonical).casefold()] = str(canonical)
        for v in variants or []:
            out[str(v).strip().casefold()] = str(canonical)
    return out


def canonical_industry(values: pd.Series) -> pd.Series:
    """"SaaS", "Sofware", "Computer Software" -> "software"; unknown values keep their folded spelling."""
    table = _lookup(INDUSTRIES_FILE)
    return on_uniques(values, lambda v: fold(v).map(lambda x: table.get(x, x) if pd.notna(x) else x))


REGION_NAMES = {"NA": "North America", "LATAM": "Latin America", "EU": "Europe", "MEA": "Middle East and Africa",
                "APAC": "Asia-Pacific"}


def region_name(code: str) -> str:
    """A sales region's code in words: "NA" -> "North America" (never "NA", which reads as "not available")."""
    return REGION_NAMES.get(code, code)


def region(countries: pd.Series) -> pd.Series:
    """Sales region (NA, LATAM, EU, MEA, APAC) of a country name or code; missing if not in the table."""
    table = _lookup(REGIONS_FILE)
    return on_uniques(countries, lambda v: fold(v).map(lambda x: table.get(x) if pd.notna(x) else None))


def band(values: np.ndarray, bands: tuple[tuple[float, str], ...], index: pd.Index | None = None) -> pd.Series:
    """The label of the band each value falls in (missing stays missing)."""
    edges = np.array([lo for lo, _ in bands], dtype=float)
    idx = np.searchsorted(edges, values, side="right") - 1
    return text_from_codes(np.where(np.isnan(values), -1, idx), [label for _, label in bands], index)


def icp_fit(context: pd.DataFrame, icp: IcpParams) -> tuple[np.ndarray, pd.Series, pd.Series] | None:
    """(fit, matched, missed): share of the declared ICP criteria each record meets (of those its
    data can judge), and the names of the criteria met and missed. None if no ICP is declared."""
    checks: dict[str, tuple[pd.Series, pd.Series]] = {}  # name -> (known, ok)
    if icp.industries and "industry" in context:
        values = context["industry"]
        checks["industry"] = (values.notna(), _isin_folded(values, icp.industries))
    for name, bounds in (("employees", icp.employees), ("annual_revenue", icp.annual_revenue)):
        if bounds is not None and name in context:
            x = pd.to_numeric(context[name], errors="coerce")
            checks[name] = (x.notna(), (x >= bounds[0]) & (x <= bounds[1]))
    if icp.regions and "region" in context:
        values = context["region"]
        checks["region"] = (values.notna(), values.isin(icp.regions))
    if icp.countries and "country" in context:
        values = context["country"]
        checks["country"] = (values.notna(), _isin_folded(values, icp.countries))
    if not checks:
        return None
    known = np.column_stack([k.fillna(False).to_numpy(dtype=bool) for k, _ in checks.values()])
    ok = np.column_stack([o.fillna(False).to_numpy(dtype=bool) for _, o in checks.values()]) & known
    evaluable = known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = np.where(evaluable > 0, ok.sum(axis=1) / np.maximum(evaluable, 1), np.nan)
    # Word each distinct pattern of matched / missed criteria once (there are at most 3 ** k).
    names = list(checks)
    weights = 3 ** np.arange(len(names))
    pattern = (ok * 2 + (known & ~ok)) @ weights  # per criterion: 2 matched, 1 missed, 0 unknown
    distinct, inverse = np.unique(pattern, return_inverse=True)
    digits = (distinct[:, None] // weights) % 3
    matched_text = [";".join(n for n, d in zip(names, row, strict=True) if d == 2) for row in digits]
    missed_text = [";".join(n for n, d in zip(names, row, strict=True) if d == 1) for row in digits]
    return fit, text_from_codes(inverse, matched_text, context.index), text_from_codes(inverse, missed_text,
                                                                                          context.index)


def _isin_folded(values: pd.Series, wanted: list[str]) -> pd.Series:
    """Whether each value, case-folded, is one of ``wanted`` (folded too); tested once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    folded = {w.casefold() for w in wanted}
    hit = pd.Series(uniques, dtype="string").str.casefold().isin(folded).to_numpy(dtype=bool)
    return pd.Series(np.append(hit, False)[codes], index=values.index)
