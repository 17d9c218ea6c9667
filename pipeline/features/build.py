"""The feature matrix: one row per record, each feature taken as of the record's as-of date.

The as-of date is the decision date for a closed record and the scoring date for an open one,
so training sees exactly what scoring will see: nothing that happened later. Without a decision
date in the export, every record is taken at the scoring date (and training splits at random,
stratified, instead of by time). The same :func:`build_features` serves training and scoring.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from pipeline.config import FeaturesParams, IcpParams
from pipeline.contracts.features import (
    FRAMEWORK_POINTS,
    KEY_COLUMNS,
    FeatureSet,
    FeatureSpec,
    criterion_column,
    reason_column,
)
from pipeline.contracts.fields import OUTCOME_OPEN, OUTCOME_WON, FieldInfo
from pipeline.errors import DataError
from pipeline.features.dask import DaskEvents
from pipeline.features.events import EventLog, PendingEventLog
from pipeline.features.fields import field_features
from pipeline.features.firmographic import icp_fit
from pipeline.features.intent import (
    as_event_log,
    event_types,
    intent_features,
    intent_specs,
    is_intent_feature,
)
from pipeline.features.qualification import Framework, evaluate_framework, load_framework, status_shares

log = logging.getLogger(__name__)


class Audit(Protocol):
    """What :func:`build_features` tells a feature audit (the leakage guard) as it builds: the keys
    once, then each group of features as soon as it exists."""

    def split(self, keys: pd.DataFrame) -> None: ...

    def measure(self, matrix: pd.DataFrame, specs: list[FeatureSpec]) -> None: ...


def default_scoring_date(records: pd.DataFrame, events: EventLog | PendingEventLog | DaskEvents | pd.DataFrame | None
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
    records: pd.DataFrame, events: EventLog | PendingEventLog | DaskEvents | pd.DataFrame | None,
    fields: list[FieldInfo], *,
    params: FeaturesParams, scoring_date: date | None = None, event_accounts: pd.DataFrame | None = None,
    icp: IcpParams, framework: str | Framework, audit: Audit | None = None, event_types: list[str] | None = None,
) -> FeatureSet:
    """Feature matrix for every record; open records (and all, without decision dates) at ``scoring_date``.

    A record's features depend only on its own fields, its (and its account's) events before its
    as-of date, and the params: built alone or in a batch, a record gets the same features.

    The intent features are built on threads of their own (waiting there for a log still being
    read, :class:`PendingEventLog`) while this thread builds what needs only the records: field
    features, ICP fit, and the framework unless its rules refer to intent features. With
    ``audit``, the leakage guard measures each group of features as soon as it is built.
    ``event_types`` are the activity types that get features of their own (default: the export's
    ``params.max_event_types`` most frequent); a model's recipe pins them at scoring, so a night's
    export with other frequencies gives the columns the model was trained on. The report names them.
    With :class:`DaskEvents`, the intent features are computed on its Dask cluster, equal to these.
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
        activity_job = pool.submit(_activity, records, as_of, events, params=params, event_accounts=event_accounts,
                                   types=event_types)
        pool.shutdown(wait=False)  # the thread ends with the job
    columns, field_specs = field_features(records, fields, as_of=as_of)
    matrix = pd.concat([base, pd.DataFrame(columns, index=records.index)], axis=1)
    context = _rule_context(records, fields, matrix)
    icp_specs: list[FeatureSpec] = []
    detail: list[str] = []
    fit = icp_fit(context, icp)
    if fit is not None:
        matrix["icp_fit"], matrix["icp_matched"], matrix["icp_missed"] = fit
        icp_specs.append(FeatureSpec("icp_fit", "numeric", "firmographic", "icp",
                                     "Fit with the ideal customer profile"))
        detail += ["icp_matched", "icp_missed"]
        context["icp_fit"] = matrix["icp_fit"]
    rules = framework if isinstance(framework, Framework) else load_framework(framework)
    fw_specs = [FeatureSpec(criterion_column(criterion.key), "categorical", "qualification", criterion.key,
                            f"{rules.name}: {criterion.label}") for criterion in rules.criteria]
    fw_specs.append(FeatureSpec(FRAMEWORK_POINTS, "numeric", "qualification", "framework",
                                f"{rules.name} criteria met"))
    detail += [reason_column(criterion_column(criterion.key)) for criterion in rules.criteria]

    def qualify(specs: list[FeatureSpec]) -> pd.DataFrame:
        # the export's own spellings (every value of it: a record alone reads as in a batch), codes in words
        display = {s.name: dict(s.levels) for s in specs if s.levels}
        for f in fields:
            if f.spellings:
                display[f.name] = display.get(f.name, {}) | f.spellings
        return evaluate_framework(context, rules, labels={s.name: s.label.lower() for s in specs}, display=display,
                                  explain=is_open)

    refers_to_intent = any(is_intent_feature(c.field) for criterion in rules.criteria for c in criterion.conditions)
    flags = None if refers_to_intent else qualify(field_specs + icp_specs)
    if audit is not None:  # while the intent features are still being built
        audit.measure(matrix, field_specs + icp_specs)
        if flags is not None:
            audit.measure(flags, fw_specs)
    intent: list[FeatureSpec] = []
    used_types: list[str] | None = None
    if activity_job is not None:
        activity, intent, used_types = activity_job.result()
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
    report = {"framework": rules.name, "criteria": shares_by_criterion, "event_types": used_types}
    log.info("features: %d records (%d open, as of %s) x %d features", len(matrix), int(is_open.sum()),
             scoring.date(), len(specs))
    for key, shares in shares_by_criterion.items():
        log.info("%s %s: %s", rules.name, key, ", ".join(f"{s} {v:.1%}" for s, v in shares.items()))
    return FeatureSet(matrix=matrix, specs=specs, report=report)


def _activity(records: pd.DataFrame, as_of: pd.Series,
              events: EventLog | PendingEventLog | DaskEvents | pd.DataFrame, *, params: FeaturesParams,
              event_accounts: pd.DataFrame | None, types: list[str] | None
              ) -> tuple[pd.DataFrame, list[FeatureSpec], list[str]]:
    """The intent features of the records, their specs and the event types they are of (waiting
    for a log still being read)."""
    with_accounts = event_accounts is not None and bool(records["account_key"].notna().any())
    if isinstance(events, DaskEvents):
        activity, types = events.activity(
            records["event_key"], as_of, types=types, limit=params.max_event_types, windows=params.event_windows_days,
            half_life_days=params.half_life_days, weights=params.event_weights,
            accounts=records["account_key"] if with_accounts else None,
            key_accounts=event_accounts if with_accounts else None)
        return activity, intent_specs(types, params.event_windows_days, accounts=with_accounts), types
    log_ = as_event_log(events)
    types = event_types(log_, limit=params.max_event_types) if types is None else list(types)
    activity = intent_features(records["event_key"], as_of, log_, types=types, windows=params.event_windows_days,
                               half_life_days=params.half_life_days, weights=params.event_weights,
                               accounts=records["account_key"] if with_accounts else None,
                               key_accounts=event_accounts if with_accounts else None)
    return activity, intent_specs(types, params.event_windows_days, accounts=with_accounts), types


def _rule_context(records: pd.DataFrame, fields: list[FieldInfo], matrix: pd.DataFrame) -> pd.DataFrame:
    """What ICP and framework rules can refer to: every declared field and every feature."""
    # The columns themselves, not copies (pandas copies one only when it is written to).
    columns = {f.name: records[f.name] for f in fields} | {c: matrix[c] for c in matrix.columns}
    context = pd.DataFrame(columns, index=records.index, copy=False)
    for column in ("seniority", "department"):  # "unknown" means no title: missing, not a value
        if column in context:
            context[column] = context[column].where(context[column] != "unknown")
    return context
