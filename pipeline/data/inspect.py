"""`leadscore inspect FILE`: profile an unseen CRM export and draft the ``source:`` section for it.

Reads one CSV or Parquet file as text, infers each column's kind, and guesses the outcome column,
the id, the decision and created dates, personal data and columns that leak the outcome. The
guesses become a draft ``source: {kind: flat, ...}`` mapping that validates with
:func:`pipeline.config.parse_settings`; the user checks it and pastes it into params.yaml.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from pipeline.config import DEFAULT_MISSING_VALUES, FeaturesParams, parse_settings
from pipeline.contracts.fields import CANONICAL_FIELDS, reserved_use
from pipeline.contracts.personal import (
    EMAILS,
    PHONES,
    STREETS,
    looks_personal,
    normalise_header,
    personal_header,
    personal_shares,
)
from pipeline.data.parsing import FALSE_VALUES, TRUE_VALUES, clean_text, on_uniques, parse_dates, parse_number
from pipeline.data.separation import numeric_score, out_of_fold_won_rates, separation
from pipeline.errors import ConfigError, DataError
from pipeline.io.files import atomic_path
from pipeline.io.tables import TableReader

log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "date", "boolean", "text", "empty"]
NeverUseReason = Literal["pii", "outcome_derived", "other"]

# Tokens read as missing besides the params default; any found in the file go into the draft.
EXTRA_MISSING = ("select...", "(blank)", "(none)", "#null!")
MISSING = frozenset(t.casefold() for t in (*DEFAULT_MISSING_VALUES, *EXTRA_MISSING))
DATE_FORMATS = (
    "%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y/%m/%d", "%d.%m.%Y", "%d-%b-%Y",
    "%b %d, %Y", "%m/%d/%y",
)
FIT_SHARE = 0.95          # share of non-blank values that must parse for a numeric or date kind
MAX_CATEGORIES = 100      # more distinct values than this is text, not categorical
MAX_OUTCOME_VALUES = 12   # an outcome column has at most this many distinct values
LEAK_AUC = FeaturesParams().leakage_max_auc  # separating won from lost better than the leakage guard allows
LEAK_AGREEMENT = 0.97     # blank exactly when open: outcome-derived
LEAK_PURITY = 0.99        # a categorical whose values split open from closed rows this cleanly: outcome-derived
EXAMPLES = 3
# The draft marks a column pii when most of its values look personal (the mapping's own guard refuses
# a feature from far fewer: pipeline.contracts.personal.PERSONAL_SHARE).
DRAFT_PII_SHARES = {EMAILS: 0.5, STREETS: 0.5, PHONES: 0.8}  # names: by header (owners are reps)

_DECIMAL_COMMA = re.compile(r"^-?\d+,\d{1,2}$")
# Header patterns, matched against the normalised header ("Country/Region" -> "country region").
CANONICAL_HEADERS: dict[str, frozenset[str]] = {
    "employees": frozenset({"employees", "number of employees", "no of employees", "num employees", "employee count",
                            "employees count", "company size", "headcount", "head count", "number employees"}),
    "annual_revenue": frozenset({"annual revenue", "revenue", "company revenue", "annual sales", "revenue usd"}),
    "industry": frozenset({"industry", "sector", "vertical", "company industry"}),
    "country": frozenset({"country", "country region", "company country", "billing country", "country name",
                          "country code", "hq country"}),
    "founded_year": frozenset({"founded", "founded year", "year founded", "year established", "established",
                               "founded in"}),
    "parent_company": frozenset({"parent company", "subsidiary of", "parent account", "parent",
                                 "parent organization", "parent organisation"}),
    "job_title": frozenset({"job title", "title", "jobtitle", "position", "job position", "contact title"}),
    "lead_source": frozenset({"lead source", "original source", "source", "leadsource", "original source type"}),
    "stated_budget": frozenset({"budget", "stated budget", "budget usd"}),
    "purchase_timeline": frozenset({"purchase timeline", "timeline", "timeframe", "purchase timeframe",
                                    "buying timeline"}),
    "stated_need": frozenset({"need", "stated need", "business need", "primary need"}),
    "amount": frozenset({"amount", "deal amount", "deal value", "opportunity amount", "deal size", "value",
                         "opportunity value", "estimated deal size", "estimated amount", "estimated deal value"}),
}
_SELLER_HEADER = re.compile(r"\b(?:owner|agent|rep|reps|salesperson|seller|manager|assigned|assignee|csm|sdr|bdr|ae"
                            r"|account executive)\b")
_NAME_HEADER = re.compile(r"^(?:company|company name|account name|organi[sz]ation(?: name)?|deal name"
                          r"|opportunity name)$")
_ID_HEADER = re.compile(r"(?:^|\s)(?:id|key|uuid|guid|identifier)$|^id\b|^record id$")
_OUTCOME_HEADER = re.compile(r"\b(?:stage|status|outcome|result|converted|conversion|won|win|success|target|label"
                             r"|is customer|became customer|closed won)\b")
_CHANGES_AT_CLOSE_HEADER = re.compile(r"\b(?:modified|updated|last stage|stage change[ds]?"
                                      r"|(?:loss|lost|close|closed|win|won) reason|reason (?:lost|won))\b")
_DECISION_HEADER = re.compile(r"\b(?:clos|decision|decided|won|lost|conver|finish|end)")
_CREATED_HEADER = re.compile(r"\b(?:creat|engag|start|open|added|entered|received|submitted|lead date|first)")
_ROLE_HEADERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("qualification", re.compile(r"\b(?:budget|timeline|timeframe|needs?|authority|bant|decision maker|champion"
                                 r"|pain|qualif)")),
    ("intent", re.compile(r"\b(?:views?|visits?|clicks?|opens?|downloads?|webinars?|demos?|requests?|activity"
                          r"|activities|sessions?|engagement|events?|pages?|score|\d+ ?d|calls?|meetings?)\b"
                          r"|days since|last (?:activity|touch|contact)")),
    ("firmographic", re.compile(r"\b(?:company|account|industry|sector|vertical|employees?|revenue|country|region"
                                r"|city|state|location|office|founded|established|subsidiary|parent|headquarters"
                                r"|hq|company size)\b")),
    ("contact", re.compile(r"\b(?:title|job|seniority|department|function|persona|contact|source|role|language"
                           r"|timezone)\b")),
)
# Outcome values, matched on the normalised value ("Closed-Won" -> "closed won").
_WON_VALUES = frozenset({"converted", "customer", "success", "successful", "signed", "booked", "purchased",
                         "sold", "closed won", "won"})
_LOST_VALUES = frozenset({"unconverted", "not converted", "disqualified", "rejected", "dead", "unqualified",
                          "churned", "cancelled", "canceled", "no sale", "declined", "closed lost", "lost"})


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ColumnProfile:
    """What one column holds."""

    name: str
    kind: Kind
    null_share: float
    distinct: int
    examples: tuple[str, ...]
    date_format: str | None = None
    date_alternatives: tuple[str, ...] = ()   # other formats that read the values equally well
    fit_share: float = 1.0                    # share of non-blank values that fit the kind
    odd_examples: tuple[str, ...] = ()        # values that do not fit the kind


@dataclass(frozen=True)
class OutcomeGuess:
    """A column that looks like the outcome, and its values sorted into won / lost / open."""

    column: str
    won: tuple[str, ...]
    lost: tuple[str, ...]
    open: tuple[str, ...]
    counts: dict[str, int]   # raw value (trimmed) -> rows
    score: float


@dataclass(frozen=True)
class Finding:
    """Why a column is never a feature."""

    reason: NeverUseReason
    why: str


@dataclass(frozen=True)
class FieldDraft:
    """One entry of ``primary.columns``."""

    column: str
    kind: str
    role: str
    canonical: bool
    format: str | None = None
    personal: bool = False   # its values look like the sellers' own names: drafted with personal: allowed


@dataclass
class Inspection:
    """Everything ``leadscore inspect`` found out about one file."""

    path: Path
    file_format: Literal["csv", "parquet"]
    delimiter: str | None
    encoding: str | None
    rows: int
    columns: list[ColumnProfile]
    outcome: OutcomeGuess | None = None
    outcome_alternatives: list[OutcomeGuess] = field(default_factory=list)
    id_column: str | None = None
    decision_date: str | None = None
    created_date: str | None = None
    never_use: dict[str, Finding] = field(default_factory=dict)
    fields: dict[str, FieldDraft] = field(default_factory=dict)
    missing_found: list[str] = field(default_factory=list)   # extra missing tokens seen in the file
    notes: list[str] = field(default_factory=list)

    def profile(self, column: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == column)


@dataclass(frozen=True)
class RawTable:
    """A file read as text: every cell a string, blanks as ""."""

    frame: pd.DataFrame
    file_format: Literal["csv", "parquet"]
    delimiter: str | None
    encoding: str | None
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------- reading


def read_table(path: Path, *, delimiter: str | None = None, encoding: str | None = None) -> RawTable:
    """Read ``path`` (CSV or Parquet) as text, its delimiter and encoding detected unless given.
    Raises DataError with a plain message if it cannot."""
    reader = TableReader(path, delimiter=delimiter, encoding=encoding, blanks_null=False, repeated_headers="drop",
                         folders=False, text=True, encoding_fix="try --encoding latin-1")
    table = reader.read()
    frame = pd.DataFrame({name: table.column(name).to_pandas().astype("string").fillna("").astype(str)
                          for name in reader.columns}, index=pd.RangeIndex(table.num_rows))
    notes = list(reader.notes)
    if reader.malformed:
        notes.append(f"{len(reader.malformed):,} line(s) with the wrong number of fields are left out of the "
                     f"profile (ingest quarantines them), e.g. line {reader.malformed[0].line}")
    if reader.format == "parquet":
        return RawTable(frame, "parquet", None, None, tuple(notes))
    return RawTable(frame, "csv", reader.delimiter, reader.encoding, tuple(notes))


# ---------------------------------------------------------------- values


def snake_name(name: str) -> str:
    """A valid field name for a header: lower_snake_case, starting with a letter."""
    snake = normalise_header(name).replace(" ", "_")
    if not snake:
        return "column"
    return snake if snake[0].isalpha() else f"col_{snake}"


def clean(values: pd.Series) -> pd.Series:
    """Trimmed text, with missing tokens ("", N/A, null, -, Select...) as NA."""
    return on_uniques(values, lambda v: clean_text(v, MISSING))


def parse_numbers(values: pd.Series) -> pd.Series:
    """"1,200" -> 1200.0, "$3.5M" -> 3500000.0, anything else -> NaN."""
    return on_uniques(values, parse_number).astype("float64")


def parse_date_values(values: pd.Series, fmt: str | None) -> pd.Series:
    """Dates in ``fmt`` as seconds since 1970 (float), anything else -> NaN."""
    def seconds(text: pd.Series) -> pd.Series:
        return (parse_dates(text, fmt) - pd.Timestamp("1970-01-01")).dt.total_seconds()

    return on_uniques(values, seconds).astype("float64")


def _date_share(values: pd.Series, counts: np.ndarray, fmt: str) -> float:
    """Share of rows whose value parses with ``fmt`` (``values`` distinct, ``counts`` their rows)."""
    head = values.head(500)  # most formats fail on the first values already: skip the full parse
    if pd.to_datetime(head, format=fmt, errors="coerce").notna().mean() < 0.5:
        return 0.0
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    return float(counts[parsed.notna().to_numpy()].sum() / counts.sum())


def profile_column(name: str, raw: pd.Series) -> ColumnProfile:
    """Kind, blank share, distinct count and examples of one text column."""
    values = clean(raw)
    present = values.dropna()
    rows = max(len(values), 1)
    null_share = 1 - len(present) / rows
    if present.empty:
        return ColumnProfile(name, "empty", null_share, 0, ())
    freq = present.value_counts(sort=False)
    distinct_values = freq.index.to_series().reset_index(drop=True)
    counts = freq.to_numpy()
    examples = tuple(_short(v) for v in present.drop_duplicates().head(EXAMPLES))
    folded = {v.casefold() for v in freq.index} if len(freq) <= 4 else set()
    if len(folded) == 2 and folded <= TRUE_VALUES | FALSE_VALUES and folded & TRUE_VALUES and folded & FALSE_VALUES:
        return ColumnProfile(name, "boolean", null_share, len(freq), examples)
    numeric = np.zeros(len(distinct_values), dtype=bool)
    if parse_numbers(distinct_values.head(500)).notna().mean() >= 0.5:  # else skip the full parse
        numeric = parse_numbers(distinct_values).notna().to_numpy()
    numeric_share = float(counts[numeric].sum() / counts.sum())
    if numeric_share >= FIT_SHARE:
        odd = tuple(_short(v) for v in distinct_values[~numeric].head(EXAMPLES))
        return ColumnProfile(name, "numeric", null_share, len(freq), examples, fit_share=numeric_share,
                             odd_examples=odd)
    shares = {fmt: _date_share(distinct_values, counts, fmt) for fmt in DATE_FORMATS}
    best = max(shares, key=lambda f: shares[f])  # ties keep the earlier, more common format
    if shares[best] >= FIT_SHARE:
        alternatives = tuple(f for f in DATE_FORMATS if f != best and shares[f] == shares[best])
        parsed = pd.to_datetime(distinct_values, format=best, errors="coerce").notna().to_numpy()
        odd = tuple(_short(v) for v in distinct_values[~parsed].head(EXAMPLES))
        return ColumnProfile(name, "date", null_share, len(freq), examples, date_format=best,
                             date_alternatives=alternatives, fit_share=shares[best], odd_examples=odd)
    kind: Kind = "categorical" if len(freq) <= min(MAX_CATEGORIES, 0.5 * len(present)) else "text"
    return ColumnProfile(name, kind, null_share, len(freq), examples)


def _short(value: str, width: int = 24) -> str:
    value = " ".join(value.split())
    return value if len(value) <= width else value[: width - 1] + "…"


# ---------------------------------------------------------------- outcome


def _fold_value(value: str) -> str:
    return " ".join(re.sub(r"[-_/:()]+", " ", value.casefold()).split())


def classify_outcome_value(value: str) -> tuple[Literal["won", "lost"] | None, bool]:
    """("won" | "lost" | None, strong): strong words (Won, Closed Lost) versus yes/no or 1/0."""
    folded = _fold_value(value)
    words = set(folded.split())
    if folded in _LOST_VALUES or words & {"lost", "loss"} or folded.startswith(("not ", "no ")):
        return "lost", True
    if folded in _WON_VALUES or words & {"won", "win"}:
        return "won", True
    if folded in TRUE_VALUES:
        return "won", False
    if folded in FALSE_VALUES:
        return "lost", False
    return None, False


def guess_outcomes(frame: pd.DataFrame) -> list[OutcomeGuess]:
    """Low-cardinality columns whose values read as won / lost (/ open), best first.

    Values are the trimmed raw values (blank included), grouped case-insensitively as the outcome
    mapping matches them. Yes/No and 1/0 count only under an outcome-like header ("Converted").
    """
    guesses = []
    for column in frame.columns:
        raw = frame[column].astype(str)
        uniques = pd.Series(raw.unique(), dtype=str).str.strip().str.casefold()
        if uniques.nunique() > MAX_OUTCOME_VALUES:
            continue
        trimmed = raw.str.strip()
        folded = trimmed.str.casefold()
        counts: dict[str, int] = {}
        spelling: dict[str, str] = {}
        for key, group in trimmed.groupby(folded, sort=False):
            spelling[str(key)] = str(group.value_counts().index[0])
            counts[spelling[str(key)]] = len(group)
        sorted_values = sorted(counts, key=lambda v: (-counts[v], v))
        classes = {v: classify_outcome_value(v) for v in sorted_values}
        won = tuple(v for v in sorted_values if classes[v][0] == "won")
        lost = tuple(v for v in sorted_values if classes[v][0] == "lost")
        if not won or not lost:
            continue
        strong = any(classes[v][1] for v in won) and any(classes[v][1] for v in lost)
        header = bool(_OUTCOME_HEADER.search(normalise_header(column)))
        if not strong and not header:
            continue
        weak_extra = strong and not all(classes[v][1] for v in (*won, *lost))
        if weak_extra:  # a stage column with Won/Lost words: stray yes/no values are not outcomes
            won = tuple(v for v in won if classes[v][1])
            lost = tuple(v for v in lost if classes[v][1])
        open_ = tuple(v for v in sorted_values if v not in won and v not in lost)
        covered = sum(counts[v] for v in (*won, *lost)) / max(len(frame), 1)
        score = (3.0 if strong else 1.0) + (1.0 if header else 0.0) + covered
        guesses.append(OutcomeGuess(column, won, lost, open_, counts, score))
    return sorted(guesses, key=lambda g: -g.score)


def outcome_labels(frame: pd.DataFrame, outcome: OutcomeGuess) -> pd.Series:
    """"won" / "lost" / "open" per row, as the draft's mapping would read the outcome column."""
    folded = frame[outcome.column].astype(str).str.strip().str.casefold()
    mapping = {v.casefold(): label for label, vals in (("won", outcome.won), ("lost", outcome.lost))
               for v in vals}
    return folded.map(mapping).fillna("open").astype(str)


# ---------------------------------------------------------------- id, personal data, leakage


def guess_id(frame: pd.DataFrame, profiles: list[ColumnProfile], exclude: Iterable[str]) -> str | None:
    """A unique, never-blank column with an id-like header (a few repeats allowed: exports have
    duplicates), else a unique one whose values look like codes."""
    skip = set(exclude)
    candidates = [p for p in profiles if p.name not in skip and p.kind in ("text", "numeric", "categorical")
                  and len(frame) > 1]
    unique = [p for p in candidates if p.null_share == 0 and p.distinct == len(frame)]
    nearly = [p for p in candidates if p.null_share <= 0.01 and p.distinct >= 0.95 * len(frame)]
    for group in (unique, nearly):
        for p in group:
            if _ID_HEADER.search(normalise_header(p.name)):
                return p.name
    for p in unique:  # no id-like header: codes such as 1C1I7A6R, all the same length
        values = frame[p.name].astype(str).str.strip()
        lengths = values.str.len()
        if (p.kind == "text" and lengths.nunique() == 1 and lengths.iloc[0] >= 5
                and values.str.fullmatch(r"[A-Za-z0-9_-]+").all() and values.str.contains(r"\d").mean() > 0.5):
            return p.name
    return None


def find_pii(frame: pd.DataFrame, profiles: list[ColumnProfile]) -> dict[str, Finding]:
    """Names, emails, phone numbers and street addresses, by header or by values."""
    found: dict[str, Finding] = {}
    for p in profiles:
        if personal_header(p.name):
            found[p.name] = Finding("pii", "personal data (by its header)")
            continue
        if p.kind in ("empty", "numeric", "date", "boolean"):
            continue
        shares = personal_shares(clean(frame[p.name]).dropna())
        for what, share in DRAFT_PII_SHARES.items():
            if shares.get(what, 0.0) >= share:
                found[p.name] = Finding("pii", f"{shares[what]:.0%} of values look like {what}")
                break
    return found


def separation_auc(values: pd.Series, profile: ColumnProfile, y: np.ndarray) -> float | None:
    """How well one column alone separates won (y=1) from lost (y=0), as the leakage guard measures
    it (pipeline.data.separation); a categorical's won rates are learned out of fold, blanks are a
    value of their own."""
    if profile.kind in ("numeric", "date"):
        x = parse_numbers(values) if profile.kind == "numeric" else parse_date_values(values, profile.date_format)
        if x.notna().sum() == 0:
            return None
        return separation(y, numeric_score(x.to_numpy(dtype=float)))
    keys = on_uniques(values, lambda v: v.str.casefold()).fillna("\0missing")
    if keys.nunique() < 2:
        return None
    codes, _ = pd.factorize(keys)
    return separation(y, out_of_fold_won_rates(codes, y))


def find_leakage(frame: pd.DataFrame, profiles: list[ColumnProfile], labels: pd.Series,
                 exclude: Iterable[str]) -> dict[str, Finding]:
    """Columns that give the outcome away: filled only for won (or only for lost) rows, blank exactly
    when open, a few values that tell open from closed, or near-perfect won/lost separation."""
    skip = set(exclude)
    found: dict[str, Finding] = {}
    won, lost, is_open = labels.eq("won"), labels.eq("lost"), labels.eq("open")
    closed = ~is_open
    y = won[closed].to_numpy().astype(float)
    can_auc = closed.sum() >= 10 and 0 < y.sum() < len(y)
    for p in profiles:
        if p.name in skip or p.kind == "empty":
            continue
        values = clean(frame[p.name])
        present = values.notna()
        reasons = []
        for name, rows in (("won", won), ("lost", lost)):
            n = int(rows.sum())
            if n and (~rows).any() and present.sum() >= 3 and rows[present].mean() >= 0.99 \
                    and present[rows].mean() >= 0.5:
                reasons.append(f"filled only for {name} rows ({int(present[rows].sum()):,} of {n:,} {name} rows, "
                               f"{int(present[~rows].sum())} other rows)")
        if is_open.any() and closed.any() and present.any() and not present.all():
            agreement = float((values.isna() == is_open).mean())
            if agreement >= LEAK_AGREEMENT:
                reasons.append(f"blank exactly when the deal is open (agrees on {agreement:.1%} of rows)")
        if is_open.any() and closed.any() and p.kind in ("categorical", "boolean") and p.distinct <= 20 \
                and not reasons:
            keys = on_uniques(values, lambda v: v.str.casefold()).fillna("\0missing")
            open_share = is_open.groupby(keys).agg(["sum", "count"])
            purity = float(np.maximum(open_share["sum"], open_share["count"] - open_share["sum"]).sum() / len(keys))
            if purity >= LEAK_PURITY:
                reasons.append(f"its value tells open from closed deals (agrees on {purity:.1%} of rows)")
        if can_auc:
            auc = separation_auc(values[closed], p, y)
            if auc is not None and auc > LEAK_AUC:
                reasons.append(f"alone separates won from lost almost perfectly (ROC AUC {auc:.3f})")
        if reasons:
            found[p.name] = Finding("outcome_derived", "; ".join(reasons))
    return found


# ---------------------------------------------------------------- dates and fields


def choose_dates(profiles: list[ColumnProfile], leaks: dict[str, Finding],
                 exclude: Iterable[str]) -> tuple[str | None, str | None]:
    """(decision date, created date) among the date columns, by header; a date that is blank exactly
    for open rows is the decision date when no header says so."""
    skip = set(exclude)
    dates = [p.name for p in profiles if p.kind == "date" and p.name not in skip]
    decision = next((d for d in dates if _DECISION_HEADER.search(normalise_header(d))
                     and not _CREATED_HEADER.search(normalise_header(d))), None)
    if decision is None:
        decision = next((d for d in dates if d in leaks and "blank exactly when" in leaks[d].why), None)
    created = next((d for d in dates if d != decision and d not in leaks
                    and _CREATED_HEADER.search(normalise_header(d))), None)
    return decision, created


def guess_role(name: str) -> str:
    """intent for activity counts, qualification for BANT, firmographic, contact, else deal."""
    header = normalise_header(name)
    return next((role for role, pattern in _ROLE_HEADERS if pattern.search(header)), "deal")


def _canonical_for(profile: ColumnProfile) -> str | None:
    header = normalise_header(profile.name)
    for name, headers in CANONICAL_HEADERS.items():
        if header in headers:
            expected = CANONICAL_FIELDS[name][0]
            fits = profile.kind == "numeric" if expected == "numeric" else profile.kind not in ("numeric", "date")
            return name if fits else None
    return None


def draft_fields(profiles: list[ColumnProfile], exclude: Iterable[str]) -> dict[str, FieldDraft]:
    """Field name -> column for every column that may be a feature."""
    skip = set(exclude)
    fields: dict[str, FieldDraft] = {}
    for p in profiles:
        if p.name in skip or p.kind == "empty":
            continue
        canonical = _canonical_for(p)
        if canonical is not None and canonical not in fields:
            fields[canonical] = FieldDraft(p.name, CANONICAL_FIELDS[canonical][0], CANONICAL_FIELDS[canonical][1],
                                           canonical=True)
            continue
        base = snake_name(p.name)
        if base in CANONICAL_FIELDS:  # same name, different kind: do not borrow the canonical meaning
            base = f"{base}_raw"
        if reserved_use(base):  # a name the pipeline gives a column of its own
            base = f"crm_{base}"
        name, n = base, 2
        while name in fields or name in CANONICAL_FIELDS:
            name, n = f"{base}_{n}", n + 1
        fields[name] = FieldDraft(p.name, p.kind, guess_role(p.name), canonical=False, format=p.date_format)
    return fields


def _draft_personal(frame: pd.DataFrame, result: Inspection) -> None:
    """A drafted field the features stage would refuse as personal (PERSONAL_SHARE of its values, fewer
    than find_pii needs) becomes never_use: pii, unless its header names the sellers (owner, agent, rep
    ...): their own names are drafted as a feature with ``personal: allowed`` and a note saying so."""
    for name, f in list(result.fields.items()):
        if f.kind in ("date", "boolean"):
            continue
        found = looks_personal(clean(frame[f.column]).dropna())
        if found is None:
            continue
        what, share = found
        if _SELLER_HEADER.search(normalise_header(f.column)):
            result.fields[name] = replace(f, personal=True)
            result.notes.append(f"{f.column}: {share:.0%} of values look like {what}, the sellers' own: drafted "
                                "with personal: allowed; declare it never_use: pii if they are the leads' names")
        else:
            del result.fields[name]
            result.never_use[f.column] = Finding("pii", f"{share:.0%} of values look like {what}")


# ---------------------------------------------------------------- inspection


def inspect_table(table: RawTable, path: Path) -> Inspection:
    """Profile a table read by :func:`read_table` and draft its mapping."""
    frame = table.frame
    if len(frame.columns) == 0:
        raise DataError(f"{path}: has no columns")
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows")
    log.info("profiling %s: %d rows, %d columns", path, len(frame), len(frame.columns))
    profiles = [profile_column(c, frame[c]) for c in frame.columns]
    result = Inspection(path=path, file_format=table.file_format, delimiter=table.delimiter,
                        encoding=table.encoding, rows=len(frame), columns=profiles, notes=list(table.notes))
    extra = {t.casefold() for t in EXTRA_MISSING}
    seen: dict[str, str] = {}
    for c in frame.columns:
        for v in pd.Series(frame[c].unique(), dtype=str).str.strip():
            if v.casefold() in extra:
                seen.setdefault(v.casefold(), v)
    result.missing_found = sorted(seen.values())

    guesses = guess_outcomes(frame)
    if guesses:
        result.outcome, result.outcome_alternatives = guesses[0], guesses[1:]
    else:
        result.notes.append("no outcome column found: no column has values like Won/Lost or Converted 1/0; "
                            "set primary.outcome in the draft by hand")
    pii = find_pii(frame, profiles)
    outcome_col = [result.outcome.column] if result.outcome else []
    result.id_column = guess_id(frame, profiles, exclude=[*outcome_col, *pii])
    not_features = [*outcome_col, *([result.id_column] if result.id_column else [])]
    leaks: dict[str, Finding] = {
        p.name: Finding("outcome_derived", "by its header: typically set or changed when a deal closes")
        for p in profiles if _CHANGES_AT_CLOSE_HEADER.search(normalise_header(p.name))
        and p.name not in (*not_features, *pii)}
    if result.outcome is not None:
        labels = outcome_labels(frame, result.outcome)
        found = find_leakage(frame, profiles, labels, exclude=[*not_features, *pii])
        leaks = {**leaks, **{k: Finding(v.reason, f"{leaks[k].why}; {v.why}") if k in leaks else v
                             for k, v in found.items()}}
        counts = labels.value_counts()
        if counts.get("won", 0) < 2 or counts.get("lost", 0) < 2:
            result.notes.append("too few won or lost rows to check columns for outcome leakage")
    result.decision_date, result.created_date = choose_dates(profiles, leaks, exclude=[*not_features, *pii])
    if result.decision_date:
        known = leaks.get(result.decision_date)
        why = "the decision date: known only once a deal closes"
        leaks[result.decision_date] = Finding("outcome_derived", f"{why}; {known.why}" if known else why)

    never: dict[str, Finding] = {**pii, **{k: v for k, v in leaks.items() if k not in pii}}
    for p in profiles:
        if p.name in never or p.name in not_features or p.name == result.created_date:
            continue
        header = normalise_header(p.name)
        if p.kind == "empty":
            never[p.name] = Finding("other", "always blank")
        elif p.distinct == 1:
            never[p.name] = Finding("other", "a single value in every filled row: carries no information")
        elif _ID_HEADER.search(header) and p.distinct >= 0.5 * (1 - p.null_share) * len(frame):
            never[p.name] = Finding("other", "an identifier, not a feature")
        elif _NAME_HEADER.search(header):
            never[p.name] = Finding("other", "a name that identifies a company or deal, not a feature")
        elif (p.kind == "text" and _canonical_for(p) is None and p.distinct >= 20
              and p.distinct >= 0.9 * (1 - p.null_share) * len(frame)):
            never[p.name] = Finding("other", "nearly unique free text or identifier, not a feature")
    result.never_use = {p.name: never[p.name] for p in profiles if p.name in never}
    taken = [*not_features, *never, *([result.created_date] if result.created_date else [])]
    if result.decision_date:
        taken.append(result.decision_date)
    result.fields = draft_fields(profiles, exclude=taken)
    _draft_personal(frame, result)
    if result.outcome is not None:
        result.notes.extend(_open_blank_notes(frame, result, outcome_labels(frame, result.outcome)))
    result.notes.extend(_column_notes(result))
    if result.id_column is not None:
        ids = clean(frame[result.id_column])
        repeats = int(ids.duplicated(keep="first").sum() + ids.isna().sum())
        if repeats:
            result.notes.append(f"id {result.id_column}: {repeats:,} rows repeat an id or have none; see "
                                "primary.duplicates (quarantine, the default, or keep_latest by created_date)")
    return result


def _open_blank_notes(frame: pd.DataFrame, result: Inspection, labels: pd.Series) -> list[str]:
    """Fields blank far more often for open rows than for the closed rows the model learns from."""
    notes: list[str] = []
    is_open = labels.eq("open")
    if not is_open.any() or is_open.all():
        return notes
    for f in result.fields.values():
        blank = clean(frame[f.column]).isna()
        in_open, in_closed = float(blank[is_open].mean()), float(blank[~is_open].mean())
        if in_open - in_closed >= 0.5:
            notes.append(f"{f.column}: blank for {in_open:.0%} of open rows but {in_closed:.0%} of closed rows; "
                         "open deals look unlike the closed ones the model learns from")
    return notes


def _column_notes(result: Inspection) -> list[str]:
    notes = []
    for p in result.columns:
        if p.date_alternatives:
            notes.append(f"{p.name}: dates read as {p.date_format} but also fit {', '.join(p.date_alternatives)}; "
                         "check which the export uses")
        if p.odd_examples and p.kind in ("numeric", "date"):
            notes.append(f"{p.name}: {1 - p.fit_share:.1%} of values are not {p.kind}s "
                         f"(e.g. {', '.join(repr(v) for v in p.odd_examples)}); ingest blanks them")
        if p.kind in ("text", "categorical") and p.examples and all(_DECIMAL_COMMA.fullmatch(v) for v in p.examples):
            notes.append(f"{p.name}: values like {p.examples[0]!r} look like decimal commas; "
                         "convert them to points (3.5) before mapping as numeric")
    if result.outcome is not None and result.outcome.open:
        shown = ", ".join(_show(v) for v in result.outcome.open)
        notes.append(f"outcome {result.outcome.column}: {shown} not recognised as won or lost, so drafted as open; "
                     "move any that mean won or lost")
    return notes


def inspect_file(path: Path, *, delimiter: str | None = None, encoding: str | None = None) -> Inspection:
    """Read and profile one export file."""
    return inspect_table(read_table(path, delimiter=delimiter, encoding=encoding), path)


# ---------------------------------------------------------------- draft


def _source_dir(path: Path) -> str:
    """The file's folder, relative to the current directory when it is below it."""
    folder = path.resolve().parent
    try:
        return str(folder.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(folder)


PLACEHOLDER_OUTCOME = {"column": "EDIT: outcome column", "won": ["EDIT: won value"], "lost": ["EDIT: lost value"]}


def draft_source(result: Inspection) -> dict[str, Any]:
    """The ``source:`` mapping for the inspected file (kind: flat)."""
    primary: dict[str, Any] = {"file": result.path.name}
    if result.delimiter not in (None, ","):
        primary["delimiter"] = result.delimiter
    if result.encoding not in (None, "utf-8"):
        primary["encoding"] = result.encoding
    if result.id_column:
        primary["id"] = result.id_column
    if result.outcome is not None:
        o = result.outcome
        primary["outcome"] = {"column": o.column, "won": list(o.won), "lost": list(o.lost), "open": list(o.open)}
    else:
        primary["outcome"] = dict(PLACEHOLDER_OUTCOME)
    for key, column in (("decision_date", result.decision_date), ("created_date", result.created_date)):
        if column:
            primary[key] = {"column": column, "format": result.profile(column).date_format}
    columns: dict[str, Any] = {}
    for name, f in result.fields.items():
        entry: dict[str, Any] = {"column": f.column}
        if not f.canonical:
            entry.update(kind=f.kind, role=f.role)
            if f.format:
                entry["format"] = f.format
        if f.personal:
            entry["personal"] = "allowed"
        columns[name] = entry
    primary["columns"] = columns
    source: dict[str, Any] = {"kind": "flat", "dir": _source_dir(result.path)}
    if result.missing_found:
        source["missing_values"] = [*DEFAULT_MISSING_VALUES, *result.missing_found]
    source["never_use"] = {c: f.reason for c, f in result.never_use.items()}
    source["primary"] = primary
    return source


def validate_draft(draft: dict[str, Any]) -> None:
    """The draft must be a valid ``source:`` section; if not, that is a bug in inspect."""
    try:
        parse_settings({"source": draft}, source="draft")
    except ConfigError as exc:
        raise RuntimeError(f"leadscore inspect drafted an invalid source section: {exc}") from exc


def draft_yaml(result: Inspection) -> str:
    """The draft as YAML with ``source:`` at the top level, under a comment saying what to check."""
    draft = draft_source(result)
    validate_draft(draft)
    lines = [
        f"# DRAFT source mapping for {result.path.name}, written by `leadscore inspect`.",
        "# It is a guess: check every line before use, then replace the source: section of params.yaml with it.",
        "# Check above all: the outcome values (won / lost / open), that never_use lists every column only",
        "# known after a deal closes, and the kind and role of each field under primary.columns.",
    ]
    if result.outcome is None:
        lines.append("# EDIT primary.outcome: no outcome column was found.")
    for note in result.notes:
        lines.extend(textwrap.wrap(note, width=116, initial_indent="# - ", subsequent_indent="#   "))
    body = yaml.dump({"source": _flow_leaves(draft)}, Dumper=_DraftDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=120)
    return "\n".join(lines) + "\n" + _comment_never_use(body, result.never_use)


def _comment_never_use(body: str, never_use: dict[str, Finding]) -> str:
    """Append each never_use entry's reason as a YAML comment on its line."""
    out, inside = [], False
    for line in body.splitlines():
        indent = len(line) - len(line.lstrip())
        if inside and indent == 4:
            try:
                parsed = yaml.safe_load(line)
            except yaml.YAMLError:  # a very long header is written as a two-line "? key"; leave it bare
                parsed = None
            key = next(iter(parsed)) if isinstance(parsed, dict) and parsed else None
            if key in never_use:
                line = f"{line}  # {never_use[key].why}"
        elif line.strip():
            inside = line == "  never_use:"
        out.append(line)
    return "\n".join(out) + "\n"


class _Flow(dict):
    """A mapping written on one line: {column: sector, kind: categorical}."""


class _FlowList(list):
    """A list written on one line: [Won, Closed Won]."""


class _DraftDumper(yaml.SafeDumper):
    pass


_DraftDumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_DraftDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v,
                                                                          flow_style=True))


def _flow_leaves(value: Any, key: str = "") -> Any:
    """Lists and small mappings of scalars on one line; never_use one item a line (with its reason)."""
    if isinstance(value, dict):
        inner = {k: _flow_leaves(v, k) for k, v in value.items()}
        leaf = all(not isinstance(v, dict | list) for v in value.values())
        return _Flow(inner) if leaf and key not in ("never_use", "source", "primary", "outcome") else inner
    if isinstance(value, list):
        return _FlowList(value)
    return value


# ---------------------------------------------------------------- report


def _show(value: str) -> str:
    return "(blank)" if value == "" else value


def format_report(result: Inspection, output: Path | None = None) -> str:
    """The plain-text report."""
    pii = {c for c, f in result.never_use.items() if f.reason == "pii"}
    where = (f"delimiter {result.delimiter!r}, encoding {result.encoding}" if result.file_format == "csv"
             else "Parquet")
    out = [f"{result.path}: {result.rows:,} rows, {len(result.columns)} columns ({where})", ""]
    width = min(max([len(c.name) for c in result.columns] + [6]), 32)
    out.append(f"  {'column':<{width}}  {'kind':<23} {'blank':>6} {'distinct':>9}  examples")
    for c in result.columns:
        kind = f"{c.kind} {c.date_format}" if c.date_format else c.kind
        examples = "(hidden: personal data)" if c.name in pii else " | ".join(c.examples)
        out.append(f"  {_short(c.name, width):<{width}}  {kind:<23} {c.null_share:>6.0%} {c.distinct:>9,}  {examples}")
    out.append("")
    if result.outcome is not None:
        o = result.outcome

        def listed(values: tuple[str, ...]) -> str:
            return ", ".join(f"{_show(v)} ({o.counts[v]:,})" for v in values) or "-"

        out.append(f"Outcome: {o.column}")
        out.append(f"  won:  {listed(o.won)}")
        out.append(f"  lost: {listed(o.lost)}")
        out.append(f"  open: {listed(o.open)}")
        for alt in result.outcome_alternatives:
            out.append(f"  also possible: {alt.column} (won {', '.join(map(_show, alt.won))}; "
                       f"lost {', '.join(map(_show, alt.lost))})")
    else:
        out.append("Outcome: none found; edit primary.outcome in the draft")
    out.append(f"Id: {result.id_column or 'none found'}")
    for label, column in (("Decision date", result.decision_date), ("Created date", result.created_date)):
        shown = f"{column} ({result.profile(column).date_format})" if column else "none found"
        out.append(f"{label}: {shown}")
    out.append("")
    out.append("Never use as features:")
    width_nu = max([len(c) for c in result.never_use] + [6])
    for column, finding in result.never_use.items():
        out.append(f"  {column:<{width_nu}}  {finding.reason:<15}  {finding.why}")
    if not result.never_use:
        out.append("  (none found)")
    out.append("")
    out.append(f"Fields drafted ({len(result.fields)}):")
    width_f = max([len(n) for n in result.fields] + [6])
    for name, f in result.fields.items():
        what = "canonical" if f.canonical else f"{f.kind} {f.format}" if f.format else f.kind
        out.append(f"  {name:<{width_f}}  <- {f.column!r:<30} {what:<23} {f.role}")
    if not result.fields:
        out.append("  (none)")
    if result.notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  - {n}" for n in result.notes)
    if output is not None:
        out.append("")
        out.append(f"Draft written to {output}. Check it, then put it in params.yaml as the source: section.")
    return "\n".join(out)


def render(result: Inspection, output: Path | None = None) -> None:
    """Print the report to stdout."""
    print(format_report(result, output))


def default_output(path: Path) -> Path:
    """``<file stem>.source.yaml`` in the current directory."""
    return Path.cwd() / f"{path.stem}.source.yaml"


def run(path: Path, *, output: Path | None = None, delimiter: str | None = None,
        encoding: str | None = None) -> Inspection:
    """Inspect ``path``, write the draft to ``output`` and print the report."""
    if delimiter is not None:
        delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
        if len(delimiter) != 1:
            raise ConfigError(f"--delimiter {delimiter!r}: give one character, e.g. ';' or tab")
    result = inspect_file(path, delimiter=delimiter, encoding=encoding)
    output = output or default_output(path)
    if output.resolve() == path.resolve():
        raise ConfigError(f"--output {output}: that is the input file; choose another path")
    text = draft_yaml(result)
    if output.exists():
        log.warning("replacing %s", output)
    try:
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{output}: cannot write the draft: {exc.strerror or exc}") from None
    render(result, output)
    return result
