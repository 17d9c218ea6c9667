"""The features stage: one row per record, each feature taken as of the record's as-of date.

The as-of date is the decision date for a closed record and the scoring date for an open one,
so training sees exactly what scoring will see: nothing that happened later. Without a decision
date in the export, every record is taken at the scoring date (and training splits at random,
stratified, instead of by time). The same :func:`build_features` serves training and scoring.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import FeaturesParams, IcpParams, Settings
from pipeline.errors import DataError
from pipeline.features.events import Dictionary, EventLog, PendingEventLog
from pipeline.features.fields import field_features
from pipeline.features.firmographic import icp_fit
from pipeline.features.intent import (
    as_event_log,
    event_types,
    intent_features,
    intent_specs,
    is_intent_feature,
)
from pipeline.features.leakage import LeakageAudit
from pipeline.features.qualification import evaluate_framework, load_framework, status_shares
from pipeline.features.spec import FeatureSpec
from pipeline.ingest import FieldInfo
from pipeline.io import atomic_path, read_json, write_json
from pipeline.schema import (
    EVENT_ACCOUNTS_FILE,
    EVENTS_FILE,
    FEATURE_SPEC_FILE,
    FEATURES_FILE,
    FIELDS_FILE,
    OUTCOME_OPEN,
    OUTCOME_WON,
    RECORDS_FILE,
)

log = logging.getLogger(__name__)

# Columns of the feature matrix that are not features.
KEY_COLUMNS = ["record_id", "outcome", "label", "as_of"]


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix (keys, outcome, label, features, and rep-facing detail such as framework
    reasons) and the spec of each feature the model may use."""

    matrix: pd.DataFrame
    specs: list[FeatureSpec]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def default_scoring_date(records: pd.DataFrame, events: EventLog | PendingEventLog | pd.DataFrame | None
                         ) -> pd.Timestamp:
    """The export's own date: midnight after its latest decision, creation or event."""
    candidates = [records["decision_date"].max(), records["created_date"].max()]
    if events is not None and len(events):
        candidates.append(events["timestamp"].max() if isinstance(events, pd.DataFrame) else events.latest())
    known = [pd.Timestamp(c) for c in candidates if pd.notna(c)]
    if not known:
        raise DataError("the export has no dates at all; set features.scoring_date in params.yaml")
    return (max(known) + pd.Timedelta(days=1)).normalize()


def build_features(
    records: pd.DataFrame, events: EventLog | PendingEventLog | pd.DataFrame | None, fields: list[FieldInfo], *,
    params: FeaturesParams, scoring_date: date | None = None, event_accounts: pd.DataFrame | None = None,
    icp: IcpParams | None = None, framework: str = "bant", audit: LeakageAudit | None = None,
) -> FeatureSet:
    """Feature matrix for every record; open records (and all, without decision dates) at ``scoring_date``.

    A record's features depend only on its own fields, its (and its account's) events before its
    as-of date, and the params: built alone or in a batch, a record gets the same features.

    The intent features are built on threads of their own (waiting there for a log still being
    read, :class:`PendingEventLog`) while this thread builds what needs only the records: field
    features, ICP fit, and the framework unless its rules refer to intent features. With
    ``audit``, the leakage guard measures each group of features as soon as it is built.
    """
    scoring = pd.Timestamp(scoring_date) if scoring_date else default_scoring_date(records, events)
    is_open = (records["outcome"] == OUTCOME_OPEN).to_numpy()
    decided = pd.to_datetime(records["decision_date"]).to_numpy(dtype="datetime64[us]")
    as_of = pd.Series(np.where(is_open | np.isnat(decided), np.datetime64(scoring, "us"), decided),
                      index=records.index)
    base = pd.DataFrame({
        "record_id": records["record_id"].astype("str"),
        "outcome": records["outcome"].astype("str"),
        "label": np.where(is_open, np.nan, (records["outcome"] == OUTCOME_WON).to_numpy(dtype=float)),
        "as_of": as_of,
    }, index=records.index)
    if audit is not None:
        audit.split(base)
    # The intent features on threads of their own (compiled passes: they run beside the pandas work below).
    activity_job = None
    if events is not None and len(events):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intent")
        activity_job = pool.submit(_activity, records, as_of, events, params=params, event_accounts=event_accounts)
        pool.shutdown(wait=False)  # the thread ends with the job
    columns, field_specs = field_features(records, fields, as_of=as_of)
    matrix = pd.concat([base, pd.DataFrame(columns, index=records.index)], axis=1)
    context = _rule_context(records, fields, matrix)
    icp_specs: list[FeatureSpec] = []
    detail: list[str] = []
    fit = icp_fit(context, icp or IcpParams())
    if fit is not None:
        matrix["icp_fit"], matrix["icp_matched"], matrix["icp_missed"] = fit
        icp_specs.append(FeatureSpec("icp_fit", "numeric", "firmographic", "icp",
                                     "Fit with the ideal customer profile"))
        detail += ["icp_matched", "icp_missed"]
        context["icp_fit"] = matrix["icp_fit"]
    rules = load_framework(framework)
    fw_specs = [FeatureSpec(f"fw_{criterion.key}", "categorical", "qualification", criterion.key,
                            f"{rules.name}: {criterion.label}") for criterion in rules.criteria]
    fw_specs.append(FeatureSpec("framework_points", "numeric", "qualification", "framework",
                                f"{rules.name} criteria met"))
    detail += [f"fw_{criterion.key}_reason" for criterion in rules.criteria]

    def qualify(specs: list[FeatureSpec]) -> pd.DataFrame:
        return evaluate_framework(context, rules, labels={s.name: s.label.lower() for s in specs}, explain=is_open)

    refers_to_intent = any(is_intent_feature(c.field) for criterion in rules.criteria for c in criterion.conditions)
    flags = None if refers_to_intent else qualify(field_specs + icp_specs)
    if audit is not None:  # while the intent features are still being built
        audit.measure(matrix, field_specs + icp_specs)
        if flags is not None:
            audit.measure(flags, fw_specs)
    intent: list[FeatureSpec] = []
    if activity_job is not None:
        activity, intent = activity_job.result()
        matrix = pd.concat([matrix, activity], axis=1)
        if audit is not None:
            audit.measure(activity, intent)
        if flags is None:
            for column in activity.columns:
                context[column] = activity[column]
    if flags is None:
        flags = qualify(field_specs + intent + icp_specs)
        if audit is not None:
            audit.measure(flags, fw_specs)
    matrix = pd.concat([matrix, flags], axis=1)
    specs = field_specs + intent + icp_specs + fw_specs
    matrix = matrix[KEY_COLUMNS + [s.name for s in specs] + detail].reset_index(drop=True)
    # One dtype per kind, whatever the batch holds: a record alone types like a record in a batch.
    matrix = matrix.astype({s.name: "str" if s.kind == "categorical" else "float64" for s in specs}
                           | {column: "str" for column in detail})
    shares_by_criterion = status_shares(flags, rules)
    report = {"framework": rules.name, "criteria": shares_by_criterion}
    log.info("features: %d records (%d open, as of %s) x %d features", len(matrix), int(is_open.sum()),
             scoring.date(), len(specs))
    for key, shares in shares_by_criterion.items():
        log.info("%s %s: %s", rules.name, key, ", ".join(f"{s} {v:.1%}" for s, v in shares.items()))
    return FeatureSet(matrix=matrix, specs=specs, report=report)


def _activity(records: pd.DataFrame, as_of: pd.Series, events: EventLog | PendingEventLog | pd.DataFrame, *,
              params: FeaturesParams, event_accounts: pd.DataFrame | None) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """The intent features of the records and their specs (waiting for a log still being read)."""
    log_ = as_event_log(events)
    types = event_types(log_, limit=params.max_event_types)
    with_accounts = event_accounts is not None and bool(records["account_key"].notna().any())
    activity = intent_features(records["event_key"], as_of, log_, types=types, windows=params.event_windows_days,
                               half_life_days=params.half_life_days, weights=params.event_weights,
                               accounts=records["account_key"] if with_accounts else None,
                               key_accounts=event_accounts if with_accounts else None)
    return activity, intent_specs(types, params.event_windows_days, accounts=with_accounts)


def _rule_context(records: pd.DataFrame, fields: list[FieldInfo], matrix: pd.DataFrame) -> pd.DataFrame:
    """What ICP and framework rules can refer to: every declared field and every feature."""
    # The columns themselves, not copies (pandas copies one only when it is written to).
    columns = {f.name: records[f.name] for f in fields} | {c: matrix[c] for c in matrix.columns}
    context = pd.DataFrame(columns, index=records.index, copy=False)
    for column in ("seniority", "department"):  # "unknown" means no title: missing, not a value
        if column in context:
            context[column] = context[column].where(context[column] != "unknown")
    return context


@dataclass(frozen=True)
class Interim:
    """What ingest wrote: the records, the activity log and the event -> account map (each if the
    export has them), and the declared fields."""

    records: pd.DataFrame
    events: PendingEventLog | None  # read on a thread of its own: build_features waits for it when it needs it
    fields: list[FieldInfo]
    event_accounts: pd.DataFrame | None


def read_interim(interim_dir: Path) -> Interim:
    """The interim files. The activity log (the largest by far) is read on a thread of its own while
    the records are read and their own features built: pyarrow decodes without holding the GIL."""
    records_path, fields_path = interim_dir / RECORDS_FILE, interim_dir / FIELDS_FILE
    for path in (records_path, fields_path):
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore ingest` first")
    fields = [FieldInfo(**f) for f in read_json(fields_path)]
    events_path, accounts_path = interim_dir / EVENTS_FILE, interim_dir / EVENT_ACCOUNTS_FILE
    events = PendingEventLog(events_path) if events_path.exists() else None
    records = _read_table(records_path)
    event_accounts = _read_table(accounts_path) if accounts_path.exists() else None
    return Interim(records, events, fields, event_accounts)


def _read_table(path: Path) -> pd.DataFrame:
    """An interim Parquet file as a frame. Key columns are text dictionaries of up to millions of
    values; pandas' own conversion of those took ~0.8 s per column at 1M leads (it merges the
    dictionary of every batch), built here from the codes and one dictionary in ~0.1 s (the cost
    left: pandas checking that the categories are distinct)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); run `leadscore ingest` again") from None
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)
             and (pa.types.is_string(f.type.value_type) or pa.types.is_large_string(f.type.value_type))]
    frame = table.drop_columns(coded).to_pandas()
    for name in coded:
        dictionary = Dictionary()
        codes = dictionary.chunked_codes(table.column(name))
        categories = pd.Index(pd.array(dictionary.values(), dtype="str"))
        frame[name] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories))
    return frame[table.column_names]


def write_feature_set(features: FeatureSet, out_dir: Path) -> None:
    with atomic_path(out_dir / FEATURES_FILE) as tmp:
        features.matrix.to_parquet(tmp, index=False)
    write_json(out_dir / FEATURE_SPEC_FILE, [s.as_dict() for s in features.specs])


def read_feature_set(out_dir: Path) -> FeatureSet:
    matrix_path, spec_path = out_dir / FEATURES_FILE, out_dir / FEATURE_SPEC_FILE
    for path in (matrix_path, spec_path):
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore features` first")
    specs = [FeatureSpec(**s) for s in read_json(spec_path)]
    return FeatureSet(matrix=pd.read_parquet(matrix_path), specs=specs)


def featurise(records: pd.DataFrame, events: EventLog | PendingEventLog | pd.DataFrame | None,
              fields: list[FieldInfo], *, settings: Settings, event_accounts: pd.DataFrame | None = None
              ) -> FeatureSet:
    """:func:`build_features` with the settings' params, then the leakage guard on the labeled records."""
    audit = LeakageAudit(max_auc=settings.features.leakage_max_auc, valid_fraction=settings.train.valid_fraction,
                         test_fraction=settings.train.test_fraction, seed=settings.seed)
    features = build_features(records, events, fields, params=settings.features,
                              scoring_date=settings.features.scoring_date, event_accounts=event_accounts,
                              icp=settings.icp, framework=settings.qualification.framework, audit=audit)
    kept, leakage = audit.finish(features.specs)
    return FeatureSet(matrix=features.matrix, specs=kept, report={**features.report, "leakage": leakage})


def run(settings: Settings) -> FeatureSet:
    """The features stage: ``paths.interim`` -> ``paths.features``, the leakage guard applied."""
    interim = read_interim(settings.paths.interim)
    features = featurise(interim.records, interim.events, interim.fields, settings=settings,
                         event_accounts=interim.event_accounts)
    write_feature_set(features, settings.paths.features)
    write_json(settings.paths.features_report, features.report)
    return features
