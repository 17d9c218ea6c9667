"""Reasons a rep can read: exact SHAP contributions grouped by the field a rep knows, worded from
templates, and what would raise a lead's score, computed by re-scoring it.

Every model feature has a ``source`` in the feature spec (the pricing page, the contact's title,
the company's size, ...). A lead's contributions (log-odds, from LightGBM's ``pred_contrib``) are
summed per source: all windows of pricing page views become one "Pricing page views" reason. The
reason is worded with the template (``explanations/templates.yaml``, a file a team can edit) of
the feature in the group that moved the score most, with that feature's actual value.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.errors import ConfigError
from pipeline.features.intent import NO_ACTIVITY_DAYS
from pipeline.features.spec import FeatureSpec

TEMPLATES_FILE = Path(__file__).parent / "explanations" / "templates.yaml"
ACTIONABLE_ROLES = ("intent", "qualification")  # what a rep can change; never firmographics
TITLES = {"activity": "Activity", "account_activity": "Account activity", "icp": "Ideal customer profile fit",
          "framework": "Qualification"}


@dataclass(frozen=True)
class Template:
    match: str
    text: str
    never: str | None = None
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
        unknown = set(entry) - {"match", "text", "never", "values", "format"}
        if unknown:
            raise ConfigError(f"{path}: templates[{i}] ({entry['match']}): unknown key(s) {', '.join(sorted(unknown))}")
        if entry.get("format") not in (None, "percent", "signed"):
            raise ConfigError(f"{path}: templates[{i}] ({entry['match']}): format must be percent, signed or absent")
        values = {str(k): str(v) for k, v in (entry.get("values") or {}).items()}
        out.append(Template(match=str(entry["match"]), text=str(entry["text"]), never=entry.get("never"),
                            values=values, format=entry.get("format")))
    return out


@cache
def default_templates() -> tuple[Template, ...]:
    return tuple(load_templates())


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


def word(spec: FeatureSpec, value: Any, *, group: str, templates: tuple[Template, ...] | list[Template]) -> str:
    """One sentence for one feature's value, from its template (or from its label: never its column name)."""
    template = _template_for(spec.name, templates)
    missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
    event = spec.source.replace("_", " ")
    if template is not None and template.never and not missing and spec.kind == "numeric" \
            and float(value) >= NO_ACTIVITY_DAYS:
        return template.never.format(group=group, group_lower=group.lower(), label=spec.label, event=event)
    if missing:
        shown = "unknown"
    elif spec.kind == "numeric":
        key = _number(float(value))
        shown = template.values.get(key, _number(float(value), percent=template.format == "percent",
                                                 signed=template.format == "signed")) if template else key
    else:
        text = str(value)
        shown = template.values.get(text, text.replace("_", " ")) if template else text.replace("_", " ")
    pattern = template.text if template else "{label}: {value}"
    return pattern.format(value=shown, group=group, group_lower=group.lower(), label=spec.label, event=event)


@dataclass(frozen=True)
class Groups:
    """Features grouped by source: names and titles of the groups, and each feature's group."""

    sources: list[str]
    titles: list[str]
    members: list[list[int]]   # feature positions per group
    actionable: np.ndarray     # per group: every feature of it is intent or qualification

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
        actionable = np.array([all(specs[j].role in ACTIONABLE_ROLES for j in m) for m in members])
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


def join_strings(*pieces: Any) -> np.ndarray:
    """Element-wise concatenation of strings and object arrays of strings."""
    out: Any = pieces[0]
    for piece in pieces[1:]:
        out = out + piece
    return np.asarray(out, dtype=object)


def json_strings(values: np.ndarray) -> np.ndarray:
    """Each value as a JSON string literal (None/NaN as null), escaping every distinct value once."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    escaped = np.array([json.dumps(str(u)) for u in uniques] + ["null"], dtype=object)
    return escaped[codes]


def json_arrays(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Per row, ``[item, item, ...]`` from (present, item) columns whose filled slots come first."""
    body = np.full(n, "", dtype=object)
    for s, (present, item) in enumerate(parts):
        piece = item if s == 0 else ", " + item
        body = np.where(present, body + piece, body)
    return "[" + body + "]"


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
    Groups whose contribution is below ``min_contribution`` (log-odds) in size are left out."""
    groups = groups or Groups.of(specs)
    wording = Wording(specs, templates if templates is not None else default_templates())
    contribution = groups.sum(phi)
    lead = lead_features(phi, groups)
    order = np.argsort(-contribution, axis=1, kind="stable")
    rows = np.arange(len(phi))
    ranked = []
    sides = ((order, contribution >= min_contribution), (order[:, ::-1], contribution <= -min_contribution))
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


def typical_won_values(x: pd.DataFrame, y: np.ndarray, specs: list[FeatureSpec]) -> dict[str, Any]:
    """Per feature, a value typical of won deals (from the training rows): the most common category;
    for a number, the median over won deals that show it (not 0, not "never"), else over all won."""
    won = x[y == 1]
    out: dict[str, Any] = {}
    for spec in specs:
        column = won[spec.name]
        if spec.kind == "categorical":
            counts = column.dropna().astype(str).value_counts()
            out[spec.name] = str(counts.index[0]) if len(counts) else None
            continue
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        shown = values[(values != 0) & (values < NO_ACTIVITY_DAYS)]
        pool = shown if len(shown) else values
        out[spec.name] = float(np.median(pool)) if len(pool) else None
    return out


def lead_card(row: pd.Series) -> Any:
    """A rich renderable of one scored lead (a row of scores.parquet): what `leadscore explain` prints."""
    import json

    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    def items(column: str) -> list[dict[str, Any]]:
        value = row.get(column)
        return json.loads(value) if isinstance(value, str) and value else []

    head = Text()
    head.append(f"Score {row['score']}  Grade {row['grade']}", style="bold")
    head.append(f"   (probability {float(row['probability']):.0%})   next step: ")
    head.append(str(row.get("next_step", "")).replace("_", " "), style="bold")
    rule = Text(f"because {row.get('next_step_rule', '')}", style="dim")
    reasons_table = Table(show_header=True, box=None, pad_edge=False)
    reasons_table.add_column("", width=2)
    reasons_table.add_column("Reason")
    reasons_table.add_column("Effect", justify="right")
    for sign, column, style in (("+", "reasons_for", "green"), ("-", "reasons_against", "red")):
        for item in items(column):
            bar = "#" * max(1, min(20, round(abs(float(item["contribution"])) * 20)))
            reasons_table.add_row(Text(sign, style=style), Text(item["text"]), Text(bar, style=style))
    checks = Table(show_header=True, box=None, pad_edge=False)
    checks.add_column("Criterion")
    checks.add_column("Status")
    checks.add_column("Why")
    marks = {"met": ("met", "green"), "not_met": ("not met", "red"), "unknown": ("unknown", "yellow")}
    for item in items("checklist"):
        word_, style = marks.get(item["status"], (item["status"], ""))
        checks.add_row(Text(item["label"]), Text(word_, style=style), Text(item.get("reason") or ""))
    raise_lines = [Text("- " + item["text"]) for item in items("what_would_raise_detail")]
    footer = Text(f"model {row.get('model_version')} (registry version {row.get('registry_version') or 'none'}, "
                  f"{row.get('model_status')}); as of {row.get('as_of')}; scored {row.get('scored_at')}", style="dim")
    parts: list[Any] = [head, rule, Text(""), Text("Why this score", style="bold"), reasons_table]
    if raise_lines:
        parts += [Text(""), Text("What would raise it", style="bold"), *raise_lines]
    if checks.row_count:
        parts += [Text(""), Text("Qualification checklist", style="bold"), checks]
    if row.get("model_status") == "unpromoted":
        parts += [Text(""), Text("Warning: this score comes from a model that did not pass the quality gates.",
                                 style="bold red")]
    parts += [Text(""), footer]
    return Panel(Group(*parts), title=f"Lead {row['record_id']}", expand=False)
