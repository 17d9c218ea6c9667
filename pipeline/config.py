"""params.yaml -> typed, validated settings, read once.

Every key is declared here. An unknown key, a value of the wrong type or a value out of range
raises :class:`ConfigError` naming the key, e.g. ``train.learning_rat: unknown key``.
"""

from __future__ import annotations

import difflib
import itertools
import re
import typing
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.contracts.fields import CANONICAL_FIELDS, reserved_use
from pipeline.contracts.personal import personal_header
from pipeline.errors import ConfigError
from pipeline.io.files import cut, load_yaml

DEFAULT_PARAMS = Path("params.yaml")
# Bounds every stage can act on: a seed the libraries take (LightGBM's is a C int), a row count
# this tool could hold, threads an OpenMP runtime can start (LightGBM crashes beyond a few thousand).
MAX_SEED = 2**31 - 1
MAX_ROWS = 10**10
MAX_THREADS = 1_024
MAX_DAYS = 36_500
MAX_WEIGHT = 1e6


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(_Section):
    raw: Path = Path("data/raw")
    ground_truth: Path = Path("data/ground_truth")
    interim: Path = Path("data/interim")
    features: Path = Path("data/features")
    models: Path = Path("models")
    metrics: Path = Path("reports/metrics.json")          # the headline figures (dvc metrics show)
    evaluation: Path = Path("reports/evaluation.json")    # every figure: baselines, intervals, backtest, grades
    plots: Path = Path("reports/plots")
    figures: Path = Path("reports/figures")               # the same curves and the backtest as PNGs
    scores: Path = Path("data/scores")
    ingest_report: Path = Path("reports/ingest.json")
    features_report: Path = Path("reports/features.json")
    model_card: Path = Path("reports/model_card.md")
    promotion: Path = Path("reports/promotion.json")
    mlflow_db: Path = Path("mlflow.db")
    history: Path = Path("data/history")                  # every scoring run of the open leads (no DVC output)
    feedback_db: Path = Path("data/feedback/feedback.db")  # the reps' verdicts and overrides (SQLite; no DVC output)


FieldKind = Literal["numeric", "categorical", "date", "boolean", "text"]
FieldRole = Literal["firmographic", "contact", "intent", "qualification", "deal"]
NeverUse = Literal["pii", "outcome_derived", "other"]
FIELD_NAME = r"^[a-z][a-z0-9_]*$"
DEFAULT_MISSING_VALUES = ["", "n/a", "na", "#n/a", "null", "none", "nan", "-", "--", "select", "unknown"]


class DateParams(_Section):
    """A date column and its strptime format."""

    column: str
    format: str = "%Y-%m-%d"


class ColumnParams(_Section):
    """One field of the export: the header it comes from, and what it is."""

    column: str
    kind: FieldKind | None = None     # default for canonical fields; required otherwise
    role: FieldRole | None = None     # default for canonical fields; required otherwise
    label: str | None = None          # what a rep calls it; default derived from the field name
    format: str | None = None         # strptime format, for kind: date
    aliases: dict[str, str] = Field(default_factory=dict)  # raw value -> canonical value
    min: float | None = None          # numeric values outside [min, max] are blanked and counted
    max: float | None = None
    # A field whose header or values look personal (emails, phones, names, street addresses) is refused
    # as a feature unless allowed here; see pipeline/contracts/personal.py and docs/own-export.md.
    personal: Literal["refused", "allowed"] = "refused"


def personal_refusal(where: str, *, column: str, what: str) -> str:
    """Why the field at ``where`` (e.g. ``primary.columns.notes``) is refused as a feature, and the keys
    that fix it: ``what`` says what its column looks like."""
    return (f"{where}: column {column!r} looks like {what} and personal data is never a feature by default; "
            f"drop the field, declare it `source.never_use: {{{column!r}: pii}}`, show it to reps under "
            f"`source.display.fields` (email, phone, contact ...), or opt in with `personal: allowed` on {where}")


class OutcomeParams(_Section):
    """The outcome column and which of its values mean won, lost and still open."""

    column: str
    won: list[str] = Field(min_length=1)
    lost: list[str] = Field(min_length=1)
    open: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> OutcomeParams:
        seen: dict[str, str] = {}
        for outcome in ("won", "lost", "open"):
            for value in getattr(self, outcome):
                key = value.strip().casefold()
                if key in seen:
                    raise ValueError(f"value {value!r} is listed under both {seen[key]} and {outcome}")
                seen[key] = outcome
        return self


class JoinParams(_Section):
    """How a lookup table attaches: ``column`` of table ``table`` holds this table's id."""

    table: str = "primary"
    column: str
    aliases: dict[str, str] = Field(default_factory=dict)  # key value in the parent -> id value here


class FileParams(_Section):
    file: Path
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"


class TableParams(FileParams):
    id: str | None = None
    duplicates: Literal["quarantine", "keep_latest"] = "quarantine"
    columns: dict[str, ColumnParams] = Field(default_factory=dict)


class PrimaryParams(TableParams):
    """The table whose rows are trained on and scored: one row per deal or lead."""

    outcome: OutcomeParams
    decision_date: DateParams | None = None   # as-of date of closed rows; without it the split is stratified
    created_date: DateParams | None = None    # orders duplicates for keep_latest; never a feature


class LookupParams(TableParams):
    """A table joined many-to-one onto the primary table (or onto another lookup)."""

    id: str
    join: JoinParams


class EventsParams(FileParams):
    """An activity log: one row per event, keyed to the primary table or a lookup."""

    key: str
    table: str = "primary"
    type: str
    timestamp: DateParams
    aliases: dict[str, str] = Field(default_factory=dict)  # raw event label -> canonical type


DisplayKey = Literal["company", "contact", "title", "owner", "email", "phone"]
DISPLAY_COLUMNS: dict[str, str] = {"company": "company", "contact": "contact_name", "title": "contact_title",
                                   "owner": "owner", "email": "contact_email", "phone": "contact_phone",
                                   "link": "crm_link"}  # display key -> column of the scores


class DisplayField(_Section):
    """A display-only value: one column (or several joined by spaces, e.g. first and last name) of a table."""

    table: str = "primary"
    column: str | list[str]

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)


class DisplayParams(_Section):
    """What a rep sees to find and call a lead: shown on the scores, the board, `explain` and the history,
    never a feature, never in the model or its metadata. ``link``: a URL template with {record_id}."""

    fields: dict[DisplayKey, DisplayField] = Field(default_factory=dict)
    link: str | None = None

    @model_validator(mode="after")
    def _link_template(self) -> DisplayParams:
        if self.link is not None:
            names = set(re.findall(r"{([^{}]*)}", self.link))
            if names != {"record_id"} or not re.match(r"^https?://", self.link):
                raise ValueError("link: an http(s) URL template with {record_id} and no other placeholder, "
                                 "e.g. https://crm.example.com/deals/{record_id}")
        return self


class ClockParams(_Section):
    """The export's own date (its clock): the day it was taken. Open leads are scored as of the midnight
    after it, and a row dated after it is quarantined (a record created, closed or active later; a
    placeholder such as 9999-12-31), so one bad date can't move the clock for every lead."""

    export_date: date | None = None   # declared: the day the export was taken. null: found by the rule below
    # The rule: start from the export's dates without their latest outlier_share (at least outlier_rows
    # of them), then walk forward through its later dates while each is within max_gap_days of the last.
    max_gap_days: int = Field(90, ge=1, le=MAX_DAYS)
    outlier_share: float = Field(0.01, ge=0, le=0.5)
    outlier_rows: int = Field(10, ge=0, le=MAX_ROWS)


class SourceParams(_Section):
    """Where the export is and how its columns map onto fields. See docs/own-export.md."""

    kind: Literal["synthetic", "flat", "relational"] = "synthetic"
    dir: Path = Path("data/raw")                  # relative file names below resolve against this folder
    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING_VALUES))
    never_use: dict[str, NeverUse] = Field(default_factory=dict)  # raw column -> why it is never a feature
    primary: PrimaryParams | None = None
    lookups: dict[str, LookupParams] = Field(default_factory=dict)
    events: EventsParams | None = None
    account: str | None = None   # the table (a lookup, or primary) whose id is the account: adds account roll-ups
    display: DisplayParams = Field(default_factory=DisplayParams)  # display-only columns (company, contact, owner)
    clock: ClockParams = Field(default_factory=ClockParams)  # the export's date, and the rule that finds it

    @model_validator(mode="after")
    def _consistent(self) -> SourceParams:
        if self.kind == "synthetic":
            for key in ("primary", "events"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} is set by kind: synthetic; use kind: relational or flat "
                                     "to map your own export")
            if self.lookups:
                raise ValueError("lookups are set by kind: synthetic; use kind: relational to map your own export")
            return self
        if self.primary is None:
            raise ValueError(f"kind: {self.kind} needs a primary table (primary: file, id, outcome, columns)")
        if self.kind == "flat" and (self.lookups or self.events):
            raise ValueError("a flat source is one file; declare lookups and events with kind: relational")
        _check_tables(self)
        return self

    def path(self, file: Path) -> Path:
        return file if file.is_absolute() else self.dir / file


def _check_tables(source: SourceParams) -> None:
    """Join targets exist, field names are unique and valid, never-use columns are not mapped."""
    assert source.primary is not None
    tables: dict[str, TableParams] = {"primary": source.primary, **source.lookups}
    if "primary" in source.lookups:
        raise ValueError("lookups: 'primary' is reserved for the primary table")
    for name, lookup in source.lookups.items():
        if lookup.join.table not in tables or lookup.join.table == name:
            raise ValueError(f"lookups.{name}.join.table: {lookup.join.table!r} is not the primary table or "
                             f"another lookup (known: {', '.join(tables)})")
    for name in source.lookups:  # every lookup must reach the primary table without a cycle
        seen, current = {name}, source.lookups[name].join.table
        while current != "primary":
            if current in seen:
                raise ValueError(f"lookups.{name}.join: the joins form a cycle through {current!r}")
            seen.add(current)
            current = source.lookups[current].join.table
    if source.account is not None and source.account not in tables:
        raise ValueError(f"account: {source.account!r} is not the primary table or a lookup "
                         f"(known: {', '.join(tables)})")
    if source.events is not None and source.events.table not in tables:
        raise ValueError(f"events.table: {source.events.table!r} is not the primary table or a lookup "
                         f"(known: {', '.join(tables)})")
    for key, shown in source.display.fields.items():
        if shown.table not in tables:
            raise ValueError(f"display.fields.{key}.table: {shown.table!r} is not the primary table or a lookup "
                             f"(known: {', '.join(tables)})")
        if not shown.columns or any(not c.strip() for c in shown.columns):
            raise ValueError(f"display.fields.{key}.column: name the export column(s) to show")
    owner: dict[str, str] = {}
    for table_name, table in tables.items():
        for field, col in table.columns.items():
            where = f"{'primary' if table_name == 'primary' else 'lookups.' + table_name}.columns.{field}"
            if not re.match(FIELD_NAME, field):
                raise ValueError(f"{where}: field names are lower_snake_case (letters, digits, _)")
            if field in owner:
                raise ValueError(f"{where}: field {field!r} is also declared in {owner[field]}")
            used = reserved_use(field)
            if used is not None:
                raise ValueError(f"{where}: {field!r} is a name leadscore uses for {used}; give the field "
                                 f"another name (e.g. {field.removeprefix('fw_').removeprefix('evt_')}_crm), "
                                 "the column stays the same")
            owner[field] = where
            if col.column in source.never_use:
                raise ValueError(f"{where}: column {col.column!r} is declared never_use "
                                 f"({source.never_use[col.column]}) and cannot be a feature")
            if col.personal != "allowed" and (personal_header(field) or personal_header(col.column)):
                raise ValueError(personal_refusal(where, column=col.column, what="personal data by its name"))
            canonical = CANONICAL_FIELDS.get(field)
            if canonical is None and (col.kind is None or col.role is None):
                raise ValueError(f"{where}: kind and role are required for a field that is not canonical "
                                 f"(canonical fields: {', '.join(sorted(CANONICAL_FIELDS))})")
            if (col.kind or (canonical and canonical[0])) == "date" and not col.format:
                raise ValueError(f"{where}: a date field needs its format, e.g. format: '%Y-%m-%d'")


class GenerateParams(_Section):
    n_leads: int = Field(20_000, ge=50, le=MAX_ROWS)
    n_accounts: int = Field(5_000, ge=10, le=MAX_ROWS)
    events_per_lead: float = Field(8.0, ge=0, le=1_000)
    start_date: date = date(2023, 1, 1)
    export_date: date = date(2025, 12, 31)
    # The world's horizon: with a later date, each export_date is a later export of one world
    # (more deals closed, new leads opened). None: the world ends on the export date.
    world_end_date: date | None = None
    dirty_fraction: float = Field(0.01, ge=0, le=0.5)
    signal_scale: float = Field(1.0, ge=0, le=100)

    @model_validator(mode="after")
    def _dates_in_order(self) -> GenerateParams:
        if (self.export_date - self.start_date).days < 180:
            raise ValueError("export_date must be at least 180 days after start_date")
        if self.world_end_date is not None and self.world_end_date < self.export_date:
            raise ValueError("world_end_date must not be before export_date (an export cannot see past its world)")
        return self


class FeaturesParams(_Section):
    event_windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90], min_length=1)
    max_event_types: int = Field(20, ge=1, le=1_000)
    half_life_days: float = Field(30.0, ge=1, le=MAX_DAYS)        # of the decayed engagement score
    leakage_max_auc: float = Field(0.95, gt=0.5, le=1)  # a feature that alone separates won/lost better is dropped
    event_weights: dict[str, float] = Field(default_factory=dict)  # per event type in that score; default 1
    scoring_date: date | None = None

    @model_validator(mode="after")
    def _windows_positive(self) -> FeaturesParams:
        if any(w <= 0 or w > MAX_DAYS for w in self.event_windows_days):
            raise ValueError(f"event_windows_days must all be positive days, at most {MAX_DAYS:,}")
        bad = [k for k, w in self.event_weights.items() if not 0 <= w <= MAX_WEIGHT]
        if bad:
            raise ValueError(f"event_weights.{bad[0]}: a weight is between 0 and {MAX_WEIGHT:g}")
        return self


Region = Literal["NA", "LATAM", "EU", "MEA", "APAC"]


class IcpParams(_Section):
    """The ideal customer profile. Each declared criterion counts towards ``icp_fit``."""

    industries: list[str] = Field(default_factory=lambda: ["software", "financial services", "healthcare"])
    employees: tuple[float, float] | None = (50, 5000)        # [min, max] inclusive
    annual_revenue: tuple[float, float] | None = None
    regions: list[Region] = Field(default_factory=lambda: list[Region](["NA", "EU"]))
    countries: list[str] = Field(default_factory=list)


class QualificationParams(_Section):
    framework: str = "bant"   # bant | champ | anum | faint | meddic | path/to/your_rules.yaml


class SplitParams(_Section):
    """Which closed records train, validate and test: the newest are the test set, the ones before
    them validation (by time when there are decision dates). The leakage guard, train and evaluate
    all split this way."""

    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)


class TrainParams(_Section):
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(4, ge=2, le=131_072)   # LightGBM's own limit
    min_data_in_leaf: int = Field(40, ge=1, le=MAX_ROWS)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    lambda_l2: float = Field(10.0, ge=0, le=1e6)
    num_boost_round: int = Field(1000, ge=1, le=100_000)
    early_stopping_rounds: int = Field(50, ge=1, le=100_000)
    num_threads: int = Field(2, ge=1, le=MAX_THREADS)
    class_weight: Literal["none", "balanced"] = "none"
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    tuning_trials: int = Field(0, ge=0, le=1000)


class SufficiencyParams(_Section):
    """The data-sufficiency gate: fewer won or lost deals than these stops training."""

    min_won_train: int = Field(50, ge=1, le=MAX_ROWS)
    min_lost_train: int = Field(50, ge=1, le=MAX_ROWS)
    min_won_test: int = Field(20, ge=1, le=MAX_ROWS)
    min_lost_test: int = Field(20, ge=1, le=MAX_ROWS)


class RegistryParams(_Section):
    """The MLflow names: train logs a run and registers a version, evaluate moves the champion alias,
    score fetches the champion. Each export has a registered model of its own: ``model_name`` null
    derives it from the ``source:`` mapping (pipeline.mlops.tracking.registered_name)."""

    experiment_name: str = "leadscore"
    model_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class EvaluateParams(_Section):
    top_fractions: list[float] = Field(default_factory=lambda: [0.1, 0.2], min_length=1)
    bootstrap_rounds: int = Field(500, ge=0, le=100_000)
    confidence: float = Field(0.95, gt=0, lt=1)
    calibration_bins: int = Field(10, ge=2, le=100)
    backtest_windows: int = Field(4, ge=0, le=24)  # rolling-origin windows of the holdout's size; 0: none
    # the logistic baseline is fitted on a seeded sample of at most this many training deals (0: all);
    # its ranking is settled long before, and its inputs grow with the rows (evaluate's peak at 1M leads)
    baseline_max_rows: int = Field(500_000, ge=0, le=1_000_000_000)

    @model_validator(mode="after")
    def _fractions_in_range(self) -> EvaluateParams:
        if any(not 0 < f < 1 for f in self.top_fractions):
            raise ValueError("top_fractions must be shares between 0 and 1, e.g. [0.1, 0.2]")
        return self


class GatesParams(_Section):
    """What a trained model must pass before it becomes the champion that scoring uses. Every
    comparison is a paired bootstrap on the same holdout (``evaluate.bootstrap_rounds``, ``confidence``)."""

    must_beat_baselines: bool = True
    baseline_tolerance: float = Field(0.01, ge=0, le=0.5)   # AUC below a baseline's that still counts as a match
    auc_tolerance: float = Field(0.01, ge=0, le=0.5)        # AUC below the champion's a challenger may rank
    brier_tolerance: float = Field(0.0, ge=0, le=0.5)       # Brier above the champion's a challenger may score
    # an older champion yields to an equal challenger; 0: never
    max_champion_age_days: int = Field(180, ge=0, le=MAX_DAYS)


class GradesParams(_Section):
    bands: list[float] = Field(default_factory=lambda: [75.0, 50.0, 25.0])

    @model_validator(mode="after")
    def _bands_descending(self) -> GradesParams:
        if len(self.bands) != 3 or any(a <= b for a, b in itertools.pairwise(self.bands)):
            raise ValueError("bands must be three descending scores (A, B, C cut-offs)")
        return self


class RoutingParams(_Section):
    """The next step for a scored lead: the MQL -> SQL hand-off."""

    sales_ready_min_score: int = Field(60, ge=0, le=100)
    sales_ready_min_criteria: int = Field(2, ge=0, le=100)
    disqualify_below_score: int = Field(10, ge=0, le=100)


class DriftParams(_Section):
    """Population stability of each feature and of the score, scoring batch against training rows."""

    bins: int = Field(10, ge=2, le=100)
    watch: float = Field(0.1, gt=0, le=100)
    act: float = Field(0.25, gt=0, le=100)

    @model_validator(mode="after")
    def _act_above_watch(self) -> DriftParams:
        if self.act <= self.watch:
            raise ValueError("act must be above watch (PSI thresholds, e.g. watch 0.1, act 0.25)")
        return self


class ScoreParams(_Section):
    top_reasons: int = Field(3, ge=1, le=20)
    min_contribution: float = Field(0.05, ge=0, le=100)
    templates: Path | None = None
    board_max_leads: int = Field(1000, ge=1, le=1000)  # at most 1,000 (about 3.5 MB): for more, `leadscore serve`
    routing: RoutingParams = Field(default_factory=RoutingParams)
    raise_min_points: int = Field(5, ge=1, le=100)  # "what would raise it": only moves adding this many points
    chunk_rows: int = Field(100_000, ge=1, le=MAX_ROWS)
    explain: bool = True
    shap: Literal["auto", "kernel", "pred_contrib"] = "auto"


class HistoryParams(_Section):
    """The score history and the "why did this score change" it feeds (pipeline.scoring.history)."""

    enabled: bool = True              # the score stage and `score --export` append every run
    trend_runs: int = Field(5, ge=2, le=100)   # runs (this one included) a trend looks over
    trend_points: int = Field(5, ge=1, le=100)  # points moved over them that make it improving or declining


DEFAULT_REASONS: dict[str, list[str]] = {
    "agree": ["strong fit", "right timing", "engaged contact", "other"],
    "disagree": ["not a fit", "no budget", "already a customer", "bad contact data", "timing wrong", "other"],
}


class FeedbackReasons(_Section):
    """The reasons a rep may give with a verdict, one declared list per verdict."""

    agree: list[str] = Field(default_factory=lambda: list(DEFAULT_REASONS["agree"]), min_length=1)
    disagree: list[str] = Field(default_factory=lambda: list(DEFAULT_REASONS["disagree"]), min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> FeedbackReasons:
        for verdict in ("agree", "disagree"):
            values = getattr(self, verdict)
            if any(not v.strip() or len(v) > 100 for v in values):
                raise ValueError(f"{verdict}: each reason is a non-empty phrase of at most 100 characters")
            folded = [v.strip().casefold() for v in values]
            if len(set(folded)) != len(folded):
                raise ValueError(f"{verdict}: a reason is listed twice")
        return self


class FeedbackParams(_Section):
    """The reps' feedback database (pipeline.feedback, docs/feedback.md). ``url``: a SQLAlchemy URL
    (e.g. postgresql+psycopg://user@host/db); null = SQLite at ``paths.feedback_db``. The environment
    variable LEADSCORE_FEEDBACK_URL overrides both."""

    url: str | None = Field(None, min_length=1)
    reasons: FeedbackReasons = Field(default_factory=FeedbackReasons)
    disqualified_as_lost: bool = False  # an open lead a rep disagreed with as "not a fit" trains as lost
    # closed leads per group below which who-was-right says "too few to tell"
    min_leads: int = Field(10, ge=1, le=MAX_ROWS)

    @model_validator(mode="after")
    def _url_has_scheme(self) -> FeedbackParams:
        if self.disqualified_as_lost:
            raise ValueError("disqualified_as_lost: true is not implemented yet (training uses CRM outcomes "
                             "only); keep it false")
        if self.url is not None and not re.match(r"^[a-z][a-z0-9+]*://", self.url):
            raise ValueError("url: a database URL such as sqlite:///data/feedback/feedback.db or "
                             "postgresql+psycopg://user@host/leadscore (or null for paths.feedback_db)")
        return self


class Settings(_Section):
    """Every params section. Each stage reads its own and those it shares (``split``, ``grades``,
    ``drift``, ``registry``); dvc.yaml names exactly those."""

    seed: int = Field(42, ge=0, le=MAX_SEED)  # numpy, LightGBM and scikit-learn all take it
    paths: PathsParams = Field(default_factory=PathsParams)
    source: SourceParams = Field(default_factory=SourceParams)
    generate: GenerateParams = Field(default_factory=GenerateParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    icp: IcpParams = Field(default_factory=IcpParams)
    qualification: QualificationParams = Field(default_factory=QualificationParams)
    split: SplitParams = Field(default_factory=SplitParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sufficiency: SufficiencyParams = Field(default_factory=SufficiencyParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    gates: GatesParams = Field(default_factory=GatesParams)
    grades: GradesParams = Field(default_factory=GradesParams)
    drift: DriftParams = Field(default_factory=DriftParams)
    score: ScoreParams = Field(default_factory=ScoreParams)
    history: HistoryParams = Field(default_factory=HistoryParams)
    feedback: FeedbackParams = Field(default_factory=FeedbackParams)

    def resolve(self, root: Path) -> Settings:
        """The same settings with every relative path made absolute under ``root``."""
        resolved = {
            name: (root / value) if not Path(value).is_absolute() else Path(value)
            for name, value in self.paths.model_dump().items()
        }
        source_dir = self.source.dir if self.source.dir.is_absolute() else root / self.source.dir
        return self.model_copy(update={"paths": PathsParams(**resolved),
                                       "source": self.source.model_copy(update={"dir": source_dir})})


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``annotation`` (unwrapping Optional / Union), or the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed at ``loc`` (the parent of a rejected key), for a did-you-mean hint."""
    current: Any = model
    for part in loc:
        if typing.get_origin(current) is dict:  # a user-named entry, e.g. lookups.<name>
            current = _model_in(typing.get_args(current)[1])
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        current = annotation if typing.get_origin(annotation) is dict else _model_in(annotation)
    return list(getattr(current, "model_fields", {}))


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, int))
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(loc[-1]), _known_keys(Settings, loc[:-1]), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(f"{key}: unknown key{extra}")
        elif e["type"] == "value_error":
            msg = str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"{key}.{msg}" if re.match(r"^[\w.]+: ", msg) else f"{key}: {msg}")
        else:
            value = e.get("input")
            shown = f" (got {cut(repr(value))})" if not isinstance(value, dict) else ""
            lines.append(f"{key}: {e['msg']}{shown}")
    # `dvc exp run -S key=value` writes the value into params.yaml before running: a bad one stays there.
    restore = (f"\nFix the key(s) above; if `dvc exp run -S` wrote the value, `git checkout {Path(source).name}` "
               "restores the file.") if source.endswith((".yaml", ".yml")) else ""
    return f"invalid params in {source}:\n  " + "\n  ".join(lines) + restore


def parse_settings(raw: Any, *, source: str = "params") -> Settings:
    """Validate an already-parsed params mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def read_settings(path: Path | str = DEFAULT_PARAMS) -> Settings:
    """Read and validate a params file as written: a key it leaves out takes its default (the values
    of the shipped params.yaml), and relative paths stay relative."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"params file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from None
    raw = load_yaml(path, text=text)  # bounded: no alias bomb, no file of any size
    return parse_settings(raw, source=str(path))


def load_settings(path: Path | str = DEFAULT_PARAMS) -> Settings:
    """:func:`read_settings`, with relative paths resolved against the current directory."""
    return read_settings(path).resolve(Path.cwd())


def settings_yaml(settings: Settings) -> str:
    """Every key of ``settings`` as a params file that reads back to the same settings."""
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120)
