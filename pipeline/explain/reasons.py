"""Reasons a rep can read: exact SHAP contributions grouped by the field a rep knows, worded from templates.

Every model feature has a ``source`` in the feature spec (the pricing page, the contact's title,
the company's size, ...). A lead's contributions (log-odds, exact SHAP) are summed per source: all
windows of pricing page views become one "Pricing page views" reason. The reason is worded with the
template (``templates.yaml``, a file a team can edit) of the feature in the group that moved the
score most, with that feature's actual value.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.contracts.features import NO_ACTIVITY_DAYS, FeatureSpec
from pipeline.errors import ConfigError
from pipeline.explain.text import days_ago, join_strings, json_arrays, json_strings

TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")
ACTIVITY_PREFIX = "evt_"  # an activity's own features: what a rep can cause (a demo, a visit), never derived scores
UNKNOWN = "unknown"       # the level meaning "not known" (seniority, department, framework status)
FORMATS = ("percent", "signed", "days_ago")
TITLES = {"activity": "Activity", "account_activity": "Account activity", "icp": "Ideal customer profile fit",
          "framework": "Qualification"}


@dataclass(frozen=True)
class Template:
    match: str
    text: str
    never: str | None = None
    missing: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    format: str | None = None


def load_templates(path: Path | None = None) -> list[Template]:
    """The templates file (default: the package's), validated: a bad entry names itself."""
    path = path or TEMPLATES_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the explanation templates {path}: {exc}") from exc
    entries = raw.get("templates") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list under 'templates:'")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"match", "text"} <= set(entry):
            raise ConfigError(f"{path}: templates[{i}] needs 'match' and 'text'")
        unknown = set(entry) - {"match", "text", "never", "missing", "values", "format"}
        if unknown:
            raise ConfigError(f"{path}: templates[{i}] ({entry['match']}): unknown key(s) {', '.join(sorted(unknown))}")
        if entry.get("format") not in (None, *FORMATS):
            raise ConfigError(f"{path}: templates[{i}] ({entry['match']}): format must be one of "
                              f"{', '.join(FORMATS)} or absent")
        values = {str(k): str(v) for k, v in (entry.get("values") or {}).items()}
        out.append(Template(match=str(entry["match"]), text=str(entry["text"]), never=entry.get("never"),
                            missing=entry.get("missing"), values=values, format=entry.get("format")))
    return out


@cache
def default_templates() -> tuple[Template, ...]:
    return tuple(load_templates())


def load_activity_nouns(path: Path | None = None) -> dict[str, tuple[str, str]]:
    """The templates file's ``activities:``: per activity type, its singular and plural for a rep."""
    path = path or TEMPLATES_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the explanation templates {path}: {exc}") from exc
    entries = (raw.get("activities") if isinstance(raw, dict) else None) or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected a mapping under 'activities:'")
    out = {}
    for event, words in entries.items():
        if not (isinstance(words, list) and len(words) == 2 and all(isinstance(w, str) and w for w in words)):
            raise ConfigError(f"{path}: activities.{event} needs [singular, plural]")
        out[str(event)] = (words[0], words[1])
    return out


@cache
def default_activity_nouns() -> dict[str, tuple[str, str]]:
    return load_activity_nouns()


def _template_for(name: str, templates: tuple[Template, ...] | list[Template]) -> Template | None:
    return next((t for t in templates if fnmatch.fnmatchcase(name, t.match)), None)


def group_title(source: str, specs: list[FeatureSpec]) -> str:
    """What a rep calls a group: "Pricing page views", "Contact seniority", "Company size (employees)"."""
    if source in TITLES:
        return TITLES[source]
    if specs and specs[0].role == "intent" and specs[0].name.startswith("evt_"):
        return _plural(source.replace("_", " ")).capitalize()
    return specs[0].label if len(specs) == 1 else source.replace("_", " ").capitalize()


def _plural(event: str) -> str:
    """"pricing page view" -> "pricing page views", "webinar attended" -> "webinars attended"."""
    words = event.split()
    if len(words) > 1 and words[-1].endswith("ed"):
        return " ".join([words[0] + "s", *words[1:]])
    return event + ("es" if event.endswith(("s", "sh", "ch")) else "s")


def _number(value: float, *, percent: bool = False, signed: bool = False) -> str:
    if percent:
        return f"{value:.0%}"
    if signed and value > 0:
        return "+" + _number(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def is_unknown(spec: FeatureSpec, value: Any) -> bool:
    """Whether a feature's value says nothing is known: missing, or the "unknown" level. Such a value is
    never a reason *for* a score."""
    missing = value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
    return missing or (spec.kind == "categorical" and str(value) == UNKNOWN)


def word(spec: FeatureSpec, value: Any, *, group: str, templates: tuple[Template, ...] | list[Template]) -> str:
    """One sentence for one feature's value, from its template (or from its label: never its column name).
    A categorical value shows in its display form (the CRM's spelling, words for a code) unless the
    template words it."""
    template = _template_for(spec.name, templates)
    missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
    event = spec.source.replace("_", " ")
    if template is not None and template.never and not missing and spec.kind == "numeric" \
            and float(value) >= NO_ACTIVITY_DAYS:
        return template.never.format(group=group, group_lower=group.lower(), label=spec.label, event=event)
    if missing:
        pattern = template.missing if template is not None and template.missing else "{label}: not known"
        return pattern.format(group=group, group_lower=group.lower(), label=spec.label, event=event)
    if spec.kind == "numeric":
        key = _number(float(value))
        if template is not None and template.format == "days_ago":
            shown = template.values.get(key, days_ago(float(value)))
        else:
            shown = template.values.get(key, _number(float(value), percent=template.format == "percent",
                                                     signed=template.format == "signed")) if template else key
    else:
        text = str(value)
        shown = template.values.get(text, spec.shown(text)) if template else spec.shown(text)
    pattern = template.text if template else "{label}: {value}"
    return pattern.format(value=shown, group=group, group_lower=group.lower(), label=spec.label, event=event)


@dataclass(frozen=True)
class Groups:
    """Features grouped by source: names and titles of the groups, and each feature's group."""

    sources: list[str]
    titles: list[str]
    members: list[list[int]]   # feature positions per group
    actionable: np.ndarray     # per group: an activity a rep can cause (its features are an activity's own)

    @classmethod
    def of(cls, specs: list[FeatureSpec]) -> Groups:
        sources: list[str] = []
        members: list[list[int]] = []
        for j, spec in enumerate(specs):
            if spec.source not in sources:
                sources.append(spec.source)
                members.append([])
            members[sources.index(spec.source)].append(j)
        titles = [group_title(s, [specs[j] for j in m]) for s, m in zip(sources, members, strict=True)]
        actionable = np.array([all(specs[j].role == "intent" and specs[j].name.startswith(ACTIVITY_PREFIX)
                                   for j in m) for m in members])
        return cls(sources=sources, titles=titles, members=members, actionable=actionable)

    def sum(self, phi: np.ndarray) -> np.ndarray:
        """Per lead, the contribution of each group: the sum over its features (rows x groups)."""
        return np.column_stack([phi[:, m].sum(axis=1) for m in self.members]) if self.members \
            else np.zeros((len(phi), 0))


@dataclass(frozen=True)
class Ranked:
    """Up to ``k`` reasons per lead, as slots (rows x k): the group (-1: none), the worded text ("" if
    none) and the group's contribution (log-odds, rounded to 4 places). Filled slots come first."""

    group: np.ndarray
    text: np.ndarray
    contribution: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int) -> Ranked:
        """No reasons for any of ``n`` leads."""
        return cls(group=np.full((n, k), -1, dtype=np.int64), text=np.full((n, k), "", dtype=object),
                   contribution=np.zeros((n, k)))

    def items(self, titles: list[str]) -> list[list[dict[str, Any]]]:
        """Per lead, the reasons as dicts: text, group title and contribution."""
        return [[{"text": self.text[i, s], "group": titles[g], "contribution": float(self.contribution[i, s])}
                 for s, g in enumerate(self.group[i]) if g >= 0] for i in range(len(self.group))]

    def json(self, titles: list[str]) -> np.ndarray:
        """:meth:`items` as one JSON array per lead, built column-wise."""
        parts = []
        for s in range(self.group.shape[1]):
            present = self.group[:, s] >= 0
            group = np.asarray([*titles, ""], dtype=object)[self.group[:, s]]
            parts.append((present, join_strings('{"text": ', json_strings(self.text[:, s]), ', "group": ',
                                                json_strings(group), ', "contribution": ',
                                                self.contribution[:, s].astype(str).astype(object), "}")))
        return json_arrays(parts, len(self.group))


class Wording:
    """Words one feature's values for many leads at once: each distinct value is worded once."""

    def __init__(self, specs: list[FeatureSpec], templates: tuple[Template, ...] | list[Template]) -> None:
        self.specs = specs
        self.templates = templates

    def column(self, x: pd.DataFrame, j: int, rows: np.ndarray, *, group: str) -> np.ndarray:
        """The sentence for feature ``j`` of ``x`` (the model matrix) in each of ``rows``."""
        spec, column = self.specs[j], x.iloc[:, j]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy()[rows]
            uniques, inverse = np.unique(codes, return_inverse=True)
            categories = column.cat.categories
            values: list[Any] = [categories[c] if c >= 0 else None for c in uniques]
        else:
            numbers = column.to_numpy(dtype=float)[rows]
            uniques, inverse = np.unique(numbers, return_inverse=True)
            values = [float(v) for v in uniques]
        texts = [word(spec, v, group=group, templates=self.templates) for v in values]
        return np.asarray(texts, dtype=object)[inverse.reshape(-1)]

    def known(self, x: pd.DataFrame, j: int, rows: np.ndarray) -> np.ndarray:
        """Whether feature ``j`` of ``x`` says something is known in each of ``rows`` (see :func:`is_unknown`)."""
        column = x.iloc[:, j]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy()[rows]
            unknown = column.cat.categories.get_indexer([UNKNOWN])[0]
            return (codes >= 0) & (codes != unknown) if unknown >= 0 else codes >= 0
        return ~np.isnan(column.to_numpy(dtype=float)[rows])


def lead_features(phi: np.ndarray, groups: Groups) -> np.ndarray:
    """Per lead and group (rows x groups): the member feature that moved the score most."""
    lead = np.zeros((len(phi), len(groups.members)), dtype=np.int64)
    for g, members in enumerate(groups.members):
        lead[:, g] = np.asarray(members)[np.argmax(np.abs(phi[:, members]), axis=1)]
    return lead


def rank_reasons(x: pd.DataFrame, phi: np.ndarray, specs: list[FeatureSpec], *, k: int, min_contribution: float,
                 templates: tuple[Template, ...] | list[Template] | None = None,
                 groups: Groups | None = None) -> tuple[Ranked, Ranked]:
    """Per lead: up to ``k`` worded reasons for (positive) and against (negative), largest first.
    Groups whose contribution is below ``min_contribution`` (log-odds) in size are left out, and so is
    an unknown value (missing, "unknown") as a reason for: not knowing is never why a score is high."""
    groups = groups or Groups.of(specs)
    wording = Wording(specs, templates if templates is not None else default_templates())
    contribution = groups.sum(phi)
    lead = lead_features(phi, groups)
    order = np.argsort(-contribution, axis=1, kind="stable")
    rows = np.arange(len(phi))
    known = np.ones(contribution.shape, dtype=bool)
    for column in range(contribution.shape[1]):
        for j in np.unique(lead[:, column]):
            at = rows[lead[:, column] == j]
            known[at, column] = wording.known(x, int(j), at)
    pro = (contribution >= min_contribution) & known
    # the reasons for that are kept come first, largest first (an unknown one may sit between them)
    order_for = np.argsort(np.where(pro, -contribution, np.inf), axis=1, kind="stable")
    ranked = []
    sides = ((order_for, pro), (order[:, ::-1], contribution <= -min_contribution))
    for picked, keep in sides:
        n_slots = min(k, picked.shape[1])
        group = np.full((len(phi), k), -1, dtype=np.int64)
        text = np.full((len(phi), k), "", dtype=object)
        value = np.zeros((len(phi), k))
        for s in range(n_slots):
            g = picked[:, s]
            ok = keep[rows, g]
            group[ok, s] = g[ok]
            value[ok, s] = np.round(contribution[rows[ok], g[ok]], 4)
            feature = lead[rows, g]
            for j in np.unique(feature[ok]):
                at = rows[ok & (feature == j)]
                text[at, s] = wording.column(x, int(j), at, group=groups.titles[int(g[at[0]])])
        ranked.append(Ranked(group=group, text=text, contribution=value))
    return ranked[0], ranked[1]


def reasons(x: pd.DataFrame, phi: np.ndarray, specs: list[FeatureSpec], *, k: int, min_contribution: float,
            templates: tuple[Template, ...] | list[Template] | None = None) -> tuple[list[list[dict[str, Any]]],
                                                                                  list[list[dict[str, Any]]]]:
    """:func:`rank_reasons` as per-lead lists of dicts (text, group title, contribution)."""
    groups = Groups.of(specs)
    reasons_for, against = rank_reasons(x, phi, specs, k=k, min_contribution=min_contribution, templates=templates,
                                        groups=groups)
    return reasons_for.items(groups.titles), against.items(groups.titles)
