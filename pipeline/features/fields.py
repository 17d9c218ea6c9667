"""Features from the declared fields of an export, by kind, plus what canonical fields imply.

* numeric and boolean fields are used as they are; categorical ones as categories;
* a date field becomes the days between it and the as-of date (a date after the as-of date is
  information from the future, so it is treated as missing);
* free text is not a feature, except the canonical ``job_title`` (seniority and department) and
  ``parent_company`` (part of a larger group or not);
* ``founded_year`` becomes the company's age at the as-of date, and ``stated_budget`` with
  ``amount`` also gives the budget relative to the deal size;
* ``industry`` is mapped to a canonical name (``industries.yaml``), ``country`` adds the sales
  region (``regions.yaml``), ``employees`` and ``annual_revenue`` add size and revenue bands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.config import SourceParams, personal_refusal
from pipeline.contracts.features import FeatureSpec
from pipeline.contracts.fields import FieldInfo
from pipeline.contracts.personal import PERSONAL_SHARE, looks_personal, personal_header
from pipeline.errors import DataError
from pipeline.features.contact import (
    DEPARTMENT_WORDS,
    SENIORITY_WORDS,
    department,
    department_words,
    seniority,
    seniority_words,
)
from pipeline.features.firmographic import (
    EMPLOYEE_BANDS,
    REVENUE_BANDS,
    band,
    canonical_industry,
    region,
    region_name,
)

log = logging.getLogger(__name__)


def _canonical_words(spellings: dict[str, str]) -> Callable[[str], str]:
    """A canonical industry as the CRM spells it when it was written so, else capitalised."""
    return lambda value: spellings.get(value) or value[:1].upper() + value[1:]


def allowed_personal(source: SourceParams) -> frozenset[str]:
    """The fields the mapping lets be features although they look personal (``personal: allowed``)."""
    tables = [source.primary, *source.lookups.values()] if source.primary is not None else []
    return frozenset(f for t in tables if t is not None for f, col in t.columns.items() if col.personal == "allowed")


def refuse_personal(records: pd.DataFrame, fields: Sequence[FieldInfo], *, allowed: Iterable[str] = (),
                    share: float = PERSONAL_SHARE) -> None:
    """Raise DataError naming the first declared field (of any kind but date and boolean, and not in
    ``allowed``) whose name says it is personal, or at least ``share`` of whose non-empty values look
    like emails, phone numbers, person names or street addresses: such a field would copy personal
    data into the features, the model and the board."""
    opted_in = set(allowed)
    for info in fields:
        if info.name in opted_in or info.kind in ("date", "boolean") or info.name not in records.columns:
            continue
        where = f"source.{'primary' if info.table == 'primary' else 'lookups.' + info.table}.columns.{info.name}"
        if personal_header(info.name) or personal_header(info.column):
            raise DataError(personal_refusal(where, column=info.column, what="personal data by its name"))
        spelled = info.spellings or {}  # categorical values are case-folded: judge the CRM's own spelling
        found = looks_personal((spelled.get(v, v) if isinstance(v, str) else v for v in records[info.name]),
                               share=share)
        if found is not None:
            what, seen = found
            raise DataError(personal_refusal(where, column=info.column, what=(
                f"{what}: {seen:.0%} of its non-empty values (the limit is {share:.0%})")))


def field_features(
    records: pd.DataFrame, fields: Sequence[FieldInfo], *, as_of: pd.Series,
) -> tuple[dict[str, np.ndarray | pd.Series], list[FeatureSpec]]:
    """Feature columns (aligned with ``records``) and their specs, in the order fields are declared."""
    columns: dict[str, np.ndarray | pd.Series] = {}
    specs: list[FeatureSpec] = []

    def add(name: str, values: np.ndarray | pd.Series, kind: str, info: FieldInfo, label: str,
            words: Callable[[str], str] | None = None, known: Iterable[str] = ()) -> None:
        """A feature column and its spec; a categorical one's levels (those seen, and ``known`` codes a
        rule may name) get their display form from ``words`` (default: the CRM's own spelling)."""
        columns[name] = values
        levels = None
        if kind == "categorical":
            spelled = info.spellings or {}
            shown = words or (lambda v: spelled.get(v, v))
            seen = set(pd.Series(values).dropna().astype(str).unique()) | set(known)
            levels = {v: shown(v) for v in sorted(seen)}
            levels = {v: w for v, w in levels.items() if w != v} or None
        specs.append(FeatureSpec(name, kind, info.role, info.name, label, levels=levels))  # type: ignore[arg-type]

    kinds = {f.name: f.kind for f in fields}
    for info in fields:
        value = records[info.name]
        if info.name == "founded_year" and info.kind == "numeric":
            age = as_of.dt.year.to_numpy(dtype=float) - value.to_numpy(dtype=float)
            add("company_age_years", np.where(age >= 0, age, np.nan), "numeric", info, "Company age (years)")
        elif info.kind in ("numeric", "boolean"):
            add(info.name, value.to_numpy(dtype=float), "numeric", info, info.label)
            if info.name == "employees":
                add("company_size_band", band(value.to_numpy(dtype=float), EMPLOYEE_BANDS, records.index),
                    "categorical", info, "Company size band (employees)")
            elif info.name == "annual_revenue":
                add("revenue_band", band(value.to_numpy(dtype=float), REVENUE_BANDS, records.index), "categorical",
                    info, "Revenue band")
        elif info.kind == "categorical":
            words: Callable[[str], str] | None = None
            if info.name == "industry":
                value = canonical_industry(value)
                words = _canonical_words(info.spellings or {})
            add(info.name, value.astype("str"), "categorical", info, info.label, words)
            if info.name == "country":
                add("region", region(value).astype("str"), "categorical", info, "Region", region_name)
        elif info.kind == "date":
            days = (as_of - value).dt.total_seconds().to_numpy() / 86_400.0
            add(f"days_since_{info.name}", np.where(days >= 0, np.floor(days), np.nan), "numeric", info,
                f"Days since {info.label.lower()}")
        elif info.name == "job_title":
            add("seniority", seniority(value), "categorical", info, "Contact seniority", seniority_words,
                SENIORITY_WORDS)
            add("department", department(value), "categorical", info, "Contact department", department_words,
                DEPARTMENT_WORDS)
        elif info.name == "parent_company":
            add("is_subsidiary", value.notna().to_numpy(dtype=float), "numeric", info, "Part of a larger group")
        else:
            log.info("text field %s is kept in the records but is not a feature", info.name)
    if kinds.get("stated_budget") == "numeric" and kinds.get("amount") == "numeric":
        budget = records["stated_budget"].to_numpy(dtype=float)
        amount = records["amount"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(amount > 0, budget / amount, np.nan)
        info = next(f for f in fields if f.name == "stated_budget")
        add("budget_to_deal_size", ratio, "numeric", info, "Stated budget relative to deal size")
    return columns, specs
