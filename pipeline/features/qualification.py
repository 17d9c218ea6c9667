"""Qualification frameworks (BANT, CHAMP, ANUM, FAINT, MEDDIC, or your own) as declared rules.

A framework file lists criteria; each criterion is a list of conditions ``{field, op, value}``
combined with ``match: all`` or ``match: any``. For every record a criterion is

* ``met`` when the conditions hold (all of them, or any one),
* ``not_met`` when they fail,
* ``unknown`` when the data to judge is missing (including a field the export doesn't have),

with a one-line reason that quotes the actual value when it is a number or a declared level (never
free text: a text field's reason says only whether it mentions the rule's words). Rules are data:
nothing is evaluated as code.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.contracts.features import FRAMEWORK_POINTS, criterion_column, reason_column
from pipeline.errors import ConfigError
from pipeline.features.codes import text_from_codes
from pipeline.io.files import load_yaml

log = logging.getLogger(__name__)

FRAMEWORKS_DIR = Path(__file__).with_name("frameworks")
MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
STATUSES = (MET, NOT_MET, UNKNOWN)

Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "contains", "present"]
_NEEDS = {"==": "to be", "!=": "not to be", "<": "below", "<=": "at most", ">": "above", ">=": "at least",
          "in": "one of", "not_in": "none of", "between": "between", "contains": "to contain"}  # "(needs ...)"
_NUMERIC_OPS = {"<", "<=", ">", ">=", "between"}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("op 'between' needs [low, high]")
        if self.op in _NUMERIC_OPS - {"between"} and not isinstance(self.value, int | float):
            raise ValueError(f"op {self.op!r} needs a number, got {self.value!r}")
        if self.op not in ("present",) and self.value is None:
            raise ValueError(f"op {self.op!r} needs a value")
        return self


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1)


class Framework(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    criteria: list[Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Framework:
        keys = [c.key for c in self.criteria]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"criteria keys must be unique: {', '.join(dupes)}")
        return self


def framework_path(name: str) -> Path:
    """A shipped framework by name (bant, champ, anum, faint, meddic), or a path to your own file."""
    builtin = FRAMEWORKS_DIR / f"{name.lower()}.yaml"
    if builtin.exists():
        return builtin
    path = Path(name)
    if path.exists():
        return path
    shipped = ", ".join(sorted(p.stem for p in FRAMEWORKS_DIR.glob("*.yaml")))
    raise ConfigError(f"qualification.framework: {name!r} is neither a shipped framework ({shipped}) nor a file")


@cache
def load_framework(name: str) -> Framework:
    path = framework_path(name)
    try:
        raw = load_yaml(path)  # bounded: no alias bomb, no huge file
        return Framework.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid framework: {problems}") from None


def _fold(value: Any) -> Any:
    return value.strip().casefold() if isinstance(value, str) else value


def _show(value: Any, display: dict[str, str] | None = None) -> str:
    """A value as a rep reads it: numbers grouped, a coded or case-folded value in its display form
    (``display``: folded value -> words), lists as "a, b or c"."""
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{value:,.0f}"
    if isinstance(value, list):
        shown = [_show(v, display) for v in value]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    text = str(value)
    words = (display or {}).get(_fold(text)) or (display or {}).get(text)
    return words if words else text.replace("_", " ")  # coded values as words: never an identifier


def evaluate_condition(cond: Condition, column: pd.Series | None) -> pd.Series:
    """True / False per row, NA where the value is missing (or the field is absent: ``column`` None)."""
    if column is None:
        return pd.Series(pd.NA, dtype="boolean")
    present = column.notna()
    if cond.op == "present":
        return present.astype("boolean")
    if cond.op in _NUMERIC_OPS:
        x = pd.to_numeric(column, errors="coerce")
        if cond.op == "between":
            lo, hi = cond.value
            result = (x >= lo) & (x <= hi)
        else:
            result = {"<": x < cond.value, "<=": x <= cond.value, ">": x > cond.value, ">=": x >= cond.value}[cond.op]
        return result.astype("boolean").mask(x.isna())
    textual = column.dtype.kind in "OUST" or isinstance(column.dtype, pd.StringDtype | pd.CategoricalDtype)
    if textual:
        return _text_condition(cond, column)
    if cond.op in ("in", "not_in"):
        hit = column.isin(cond.value)
        result = hit if cond.op == "in" else ~hit
    elif cond.op == "contains":
        result = column.astype("string").str.contains(str(cond.value).casefold(), regex=False)
    elif pd.api.types.is_numeric_dtype(column) and isinstance(cond.value, int | float):
        result = column == cond.value if cond.op == "==" else column != cond.value
    else:
        target = _fold(str(cond.value))
        result = column.astype("string") == target if cond.op == "==" else column.astype("string") != target
    return result.astype("boolean").mask(~present)


def _text_condition(cond: Condition, column: pd.Series) -> pd.Series:
    """A condition on text, tested once per distinct value (trimmed, case-folded) and spread over the rows."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, uniques = column.cat.codes.to_numpy(), column.cat.categories
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="string").str.strip().str.casefold()
    if cond.op in ("in", "not_in"):
        hit = text.isin([_fold(v) for v in cond.value])
        hit = hit if cond.op == "in" else ~hit
    elif cond.op == "contains":
        hit = text.str.contains(str(cond.value).casefold(), regex=False)
    else:
        target = _fold(str(cond.value))
        hit = text == target if cond.op == "==" else text != target
    per_value = np.append(hit.fillna(False).to_numpy(dtype=bool), False)  # the last: missing (code -1)
    return pd.Series(per_value[codes], index=column.index).astype("boolean").mask(codes < 0)


def _declared(value: Any, cond: Condition, display: dict[str, str] | None) -> str:
    """A record's value as a reason may quote it: a number, or a level the rule or the field declares
    (the rule's own values, the field's known levels in ``display``). Any other text (notes, an email
    address) is never copied into a reason."""
    if not isinstance(value, str):
        return _show(value, display)
    declared = cond.value if isinstance(cond.value, list) else [cond.value]
    folded = _fold(value)
    if folded in {_fold(str(v)) for v in declared} or folded in {_fold(k) for k in display or {}}:
        return _show(value, display)
    return "another value" if cond.op not in _NUMERIC_OPS else "not a number"


def _reason(criterion: Criterion, values: dict[str, Any], labels: dict[str, str],
            display: dict[str, dict[str, str]]) -> str:
    """One line: each condition with the record's value and what it needs (``values``: field -> value;
    a field the export lacks is absent). The criterion's name and status are columns of their own,
    so the line does not repeat them."""
    parts = []
    for cond in criterion.conditions:
        label = labels.get(cond.field, cond.field.replace("_", " "))
        if cond.field not in values:
            parts.append(f"the export has no {label}")
            continue
        value = values[cond.field]
        if pd.isna(value):
            parts.append(f"{label} is missing")
            continue
        shown = display.get(cond.field)
        if cond.op == "present":
            parts.append(f"{label} is recorded")
            continue
        target = " and ".join(_show(v, shown) for v in cond.value) if cond.op == "between" else \
            _show(cond.value, shown)
        if cond.op == "contains":  # free text is never quoted: only whether it mentions the rule's words
            mentions = isinstance(value, str) and _fold(str(cond.value)) in _fold(value)
            parts.append(f"{label} {'mentions' if mentions else 'does not mention'} {target}")
            continue
        parts.append(f"{label} is {_declared(value, cond, shown)} (needs {_NEEDS[cond.op]} {target})")
    text = (" and " if criterion.match == "all" else " or ").join(parts)
    return text[:1].upper() + text[1:]


def _combination(status: np.ndarray, columns: list[pd.Series]) -> np.ndarray:
    """Per row, the code of its combination of status and values (missing is a value), numbered in
    order of first appearance: each column factorized on its own, the codes folded into one."""
    combined, _ = pd.factorize(status)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        combined, _ = pd.factorize(combined.astype(np.int64) * (len(uniques) + 1) + codes + 1)
    return np.asarray(combined)


def evaluate_framework(context: pd.DataFrame, framework: Framework, *, labels: dict[str, str] | None = None,
                       display: dict[str, dict[str, str]] | None = None,
                       explain: np.ndarray | None = None) -> pd.DataFrame:
    """``fw_<key>`` status and ``fw_<key>_reason`` per criterion, and ``framework_points`` (criteria met).

    Reasons are worded for the rows under ``explain`` (default: all); the others get none, since
    only the leads a rep will see need them. ``display`` (field -> value -> words) shows values as the
    CRM spells them and codes in words."""
    labels = labels or {}
    display = display or {}
    n = len(context)
    out: dict[str, Any] = {}
    points = np.zeros(n)
    for criterion in framework.criteria:
        results = []
        used: dict[str, pd.Series] = {}
        for cond in criterion.conditions:
            column = context[cond.field].reset_index(drop=True) if cond.field in context.columns else None
            if column is not None:
                used[cond.field] = column
            r = evaluate_condition(cond, column)
            results.append(r if len(r) == n else pd.Series(pd.NA, index=range(n), dtype="boolean"))
        stacked = pd.concat(results, axis=1)
        is_true = stacked.eq(True).fillna(False).to_numpy(dtype=bool)    # NA (missing data) is neither
        is_false = stacked.eq(False).fillna(False).to_numpy(dtype=bool)
        if criterion.match == "all":
            met, failed = is_true.all(axis=1), is_false.any(axis=1)
        else:
            met, failed = is_true.any(axis=1), is_false.all(axis=1)
        code = np.where(met, 0, np.where(failed, 1, 2))  # positions in STATUSES
        out[criterion_column(criterion.key)] = text_from_codes(code, STATUSES, context.index)
        points += met
        # Reasons are worded once per distinct combination of the values involved (cheap on big data).
        rows = np.flatnonzero(explain) if explain is not None else np.arange(n)
        reason_code = np.full(n, -1)
        worded: list[str] = []
        if len(rows):
            codes = _combination(code[rows], [v.iloc[rows] for v in used.values()])
            first = pd.Series(rows).groupby(codes).first().to_numpy()  # a row of each combination
            values = {name: column.iloc[first].tolist() for name, column in used.items()}  # one gather per field
            worded = [_reason(criterion, {name: v[k] for name, v in values.items()}, labels, display)
                      for k in range(len(first))]
            reason_code[rows] = codes  # combination k is worded by worded[k]
        out[reason_column(criterion_column(criterion.key))] = text_from_codes(reason_code, worded, context.index)
    out[FRAMEWORK_POINTS] = pd.Series(points, index=context.index)
    return pd.DataFrame(out, index=context.index)


def status_shares(flags: pd.DataFrame, framework: Framework) -> dict[str, dict[str, float]]:
    """Share of records met / not_met / unknown for each criterion."""
    shares = {}
    for criterion in framework.criteria:
        counts = pd.Series(flags[criterion_column(criterion.key)]).value_counts(normalize=True)
        shares[criterion.key] = {s: round(float(counts.get(s, 0.0)), 6) for s in STATUSES}
    return shares
