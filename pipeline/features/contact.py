"""Seniority and department parsed from free-text job titles ("VP of Sales", "Sr. Data Eng.", "Directeur Commercial").

The rules are a table, ``titles.yaml`` next to this module: ordered, first match wins; its header documents the
matching and the choices made (Chief of Staff, assistants, interns, ...). A team adds or overrides titles in a file
of the same layout: ``seniority(titles, load_title_rules(Path("our_titles.yaml")))`` tries that file's rules first.

Titles are normalised (accents stripped, case-folded, punctuation to spaces) and each rule is applied with one
vectorised regex search over the *distinct* titles only, then mapped back: a million rows holding a hundred
distinct titles cost a hundred normalisations and a few thousand regex searches.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.errors import ConfigError
from pipeline.features.codes import text_from_codes
from pipeline.io.files import load_yaml

TITLES_FILE = Path(__file__).with_name("titles.yaml")
BLANK = "unknown"               # a missing or blank title
SENIORITY_DEFAULT = "ic"        # a title no seniority rule matches
DEPARTMENT_DEFAULT = "other"    # a title no department rule matches

# Seniority and department codes in words, for a rep (a level a team declares gets its name capitalised).
SENIORITY_WORDS = {"c_level": "C-level", "vp": "VP", "director": "Director", "manager": "Manager",
                   "ic": "Individual contributor", BLANK: "Unknown"}
DEPARTMENT_WORDS = {"it": "IT", "hr": "HR", BLANK: "unknown"}
_SECTIONS = {"seniority_levels": "seniority", "departments": "department"}  # declared labels -> their rules
_RULE_KEYS = {"seniority": "level", "department": "department"}             # rules -> the key naming the label
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Combining marks left by NFKD decomposition ("é" -> "e" + U+0301): removed to strip accents.
_COMBINING = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_PUNCTUATION = r"[.,/&\-–—_'’()|:;+]"
# A pattern made of these characters only is a plain word or phrase, normalised like a title; else a regex.
_PLAIN = re.compile(r"[\w\s.,/&'’–—-]+")


@dataclass(frozen=True)
class TitleRule:
    """One row of the table: the label it gives and the regex of all its patterns."""

    label: str
    patterns: tuple[str, ...]   # as written in the file
    where: str                  # e.g. ".../titles.yaml: seniority rule 3 (level: vp)", for messages
    regex: re.Pattern[str]


@dataclass(frozen=True)
class TitleRules:
    """Ordered seniority and department rules, and the labels they may give."""

    seniority: tuple[TitleRule, ...]
    department: tuple[TitleRule, ...]
    seniority_levels: tuple[str, ...]
    departments: tuple[str, ...]


def seniority_words(code: str) -> str:
    """A seniority code as a rep reads it: "c_level" -> "C-level", "ic" -> "Individual contributor"."""
    return SENIORITY_WORDS.get(code) or code.replace("_", " ").capitalize()


def department_words(code: str) -> str:
    """A department code as a rep reads it: "it" -> "IT", "customer_success" -> "customer success"."""
    return DEPARTMENT_WORDS.get(code) or code.replace("_", " ")


def normalise_titles(titles: pd.Series) -> pd.Series:
    """Case-folded, accents stripped, ``. , / & - – — _ ' ( ) | : ; +`` as spaces, whitespace collapsed (object)."""
    text = pd.Series([str(t) for t in titles], index=titles.index, dtype=object)
    return (text.str.casefold().str.normalize("NFKD").str.replace(_COMBINING, "", regex=True)
            .str.replace(_PUNCTUATION, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip())


def normalise_title(title: str) -> str:
    """:func:`normalise_titles` for one string (the patterns of a rule file)."""
    text = re.sub(_COMBINING, "", unicodedata.normalize("NFKD", title.casefold()))
    return " ".join(re.sub(_PUNCTUATION, " ", text).split())


def load_title_rules(path: Path | None = None) -> TitleRules:
    """The packaged ``titles.yaml`` rules, preceded by those of ``path`` (same layout, every section optional).

    Raises :class:`ConfigError` naming the file, rule and pattern for an unknown key, an undeclared label or a
    pattern that is not a valid regex.
    """
    builtin = _read(TITLES_FILE)
    extra = _read(path) if path is not None else {}
    declared: dict[str, dict[str, None]] = {}
    for section, rules_key in _SECTIONS.items():
        names: dict[str, None] = {}
        for raw, source in ((builtin, TITLES_FILE), (extra, path)):
            names.update(dict.fromkeys(_declared(raw, section, source)))
        declared[rules_key] = names
    compiled: dict[str, tuple[TitleRule, ...]] = {}
    for rules_key in _RULE_KEYS:
        first = _rules(extra, rules_key, declared[rules_key], path) if path is not None else ()
        compiled[rules_key] = first + _rules(builtin, rules_key, declared[rules_key], TITLES_FILE)
    return TitleRules(seniority=compiled["seniority"], department=compiled["department"],
                      seniority_levels=tuple(declared["seniority"]), departments=tuple(declared["department"]))


@cache
def default_title_rules() -> TitleRules:
    """The packaged rules, read and compiled once, on first use."""
    return load_title_rules()


def seniority(titles: pd.Series, rules: TitleRules | None = None) -> pd.Series:
    """c_level / vp / director / manager / ic, or unknown for a blank title (object dtype, aligned with ``titles``)."""
    return classify(titles, (rules if rules is not None else default_title_rules()).seniority,
                    default=SENIORITY_DEFAULT)


def department(titles: pd.Series, rules: TitleRules | None = None) -> pd.Series:
    """The function a title names (sales, marketing, ..., executive), other if none, unknown for a blank title."""
    return classify(titles, (rules if rules is not None else default_title_rules()).department,
                    default=DEPARTMENT_DEFAULT)


def classify(titles: pd.Series, rules: Sequence[TitleRule], *, default: str) -> pd.Series:
    """The label of the first rule matching each title, ``default`` if none does, ``unknown`` if blank."""
    codes, uniques = pd.factorize(titles, use_na_sentinel=True)
    norm = normalise_titles(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    blank = (norm == "").to_numpy(dtype=bool)
    labels = np.where(blank, BLANK, default).astype(object)  # per distinct title
    pending = ~blank
    with warnings.catch_warnings():  # a rule's own capturing groups are fine: only whether it matches counts
        warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression", UserWarning)
        for rule in rules:
            if not pending.any():
                break
            where = np.flatnonzero(pending)
            hit = where[norm.iloc[where].str.contains(rule.regex, na=False).to_numpy(dtype=bool)]
            labels[hit] = rule.label
            pending[hit] = False
    # Each distinct label once; code -1 (a missing title) picks the appended BLANK.
    names, label_code = np.unique(np.append(labels, np.array([BLANK], dtype=object)).astype(str), return_inverse=True)
    return text_from_codes(label_code[codes], names.tolist(), titles.index)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"title rules file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read title rules file {path}: {exc}") from None
    try:
        raw = load_yaml(path, text=text)  # bounded: no alias bomb
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {_expected(_all_sections())}, "
                          f"got {type(raw).__name__}")
    for key in raw:
        if key not in _all_sections():
            raise ConfigError(f"{path}: unknown key {key!r} (expected {_expected(_all_sections())})")
    return raw


def _declared(raw: Mapping[str, Any], section: str, path: Path | None) -> list[str]:
    """Label names declared under ``section``: a mapping name -> description, or a list of names."""
    value = raw.get(section)
    if value is None:
        return []
    names = list(value) if isinstance(value, dict | list) else None
    if names is None or not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names):
        raise ConfigError(f"{path}: {section}: expected a mapping (or list) of lower-case names such as "
                          f"'sales', got {value!r}")
    if BLANK in names:
        raise ConfigError(f"{path}: {section}: {BLANK!r} is reserved for a blank title")
    return names


def _rules(raw: Mapping[str, Any], section: str, allowed: Mapping[str, None], path: Path) -> tuple[TitleRule, ...]:
    items = raw.get(section)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{path}: {section}: expected a list of rules, got {type(items).__name__}")
    key = _RULE_KEYS[section]
    out = []
    for number, item in enumerate(items, start=1):
        where = f"{path}: {section} rule {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with keys {key}, patterns (and note), got {item!r}")
        unknown = sorted(map(str, item.keys() - {key, "patterns", "note"}))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (expected {key}, patterns, note)")
        label = item.get(key)
        if not isinstance(label, str) or label not in allowed:
            declared = "seniority_levels" if section == "seniority" else "departments"
            raise ConfigError(f"{where}: {key} {label!r} is not one of {_expected(allowed)} "
                              f"(declare a new one under {declared}:)")
        where = f"{where} ({key}: {label})"
        patterns = item.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p.strip()
                                                                     for p in patterns):
            raise ConfigError(f"{where}: patterns: expected a non-empty list of words or regexes, got {patterns!r}")
        sources = [_pattern_source(p, where) for p in patterns]
        try:
            regex = re.compile(r"\b(?:" + "|".join(f"(?:{s})" for s in sources) + r")\b", re.IGNORECASE)
        except re.error as exc:  # each pattern compiles alone: two of them define the same group name
            raise ConfigError(f"{where}: its patterns do not combine into one regex: {exc}") from None
        out.append(TitleRule(label=str(label), patterns=tuple(patterns), where=where, regex=regex))
    return tuple(out)


def _pattern_source(pattern: str, where: str) -> str:
    """The regex source of one pattern: a plain phrase normalised like a title and escaped, else the regex."""
    if _PLAIN.fullmatch(pattern):
        phrase = normalise_title(pattern)
        if not phrase:
            raise ConfigError(f"{where}: pattern {pattern!r} is only punctuation")
        return re.escape(phrase)
    source = _strip_accents(pattern)
    try:
        alone = re.compile(source, re.IGNORECASE)
        re.compile(rf"\b(?:{source})\b", re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: pattern {pattern!r} is not a valid regex: {exc}") from None
    if alone.match("") is not None:
        raise ConfigError(f"{where}: pattern {pattern!r} matches an empty string, so it would match every title")
    return source


def _strip_accents(text: str) -> str:
    """Accents removed the way :func:`normalise_titles` removes them, case and punctuation kept."""
    return re.sub(_COMBINING, "", unicodedata.normalize("NFKD", text))


def _all_sections() -> list[str]:
    return [*_SECTIONS, *_RULE_KEYS]


def _expected(names: Sequence[str] | Mapping[str, Any]) -> str:
    return ", ".join(names)
