"""The features stage: one row per record, each feature taken as of the record's as-of date.

The as-of date is the decision date for a closed record and the scoring date for an open one,
so training sees exactly what scoring will see: nothing that happened later. Without a decision
date in the export, every record is taken at the scoring date (and training splits at random,
stratified, instead of by time). The same :func:`build_features` serves training and scoring.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import FeaturesParams, Settings
from pipeline.errors import DataError
from pipeline.features.fields import field_features
from pipeline.features.intent import event_types, intent_features, intent_specs
from pipeline.features.spec import FeatureSpec
from pipeline.ingest import FieldInfo
from pipeline.io import atomic_path, read_json, write_json
from pipeline.schema import (
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
    """The feature matrix (keys, outcome, label and features) and the spec of each feature."""

    matrix: pd.DataFrame
    specs: list[FeatureSpec]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def default_scoring_date(records: pd.DataFrame, events: pd.DataFrame | None) -> pd.Timestamp:
    """The export's own date: midnight after its latest decision, creation or event."""
    candidates = [records["decision_date"].max(), records["created_date"].max()]
    if events is not None and len(events):
        candidates.append(events["timestamp"].max())
    known = [pd.Timestamp(c) for c in candidates if pd.notna(c)]
    if not known:
        raise DataError("the export has no dates at all; set features.scoring_date in params.yaml")
    return (max(known) + pd.Timedelta(days=1)).normalize()


def build_features(
    records: pd.DataFrame, events: pd.DataFrame | None, fields: list[FieldInfo], *,
    params: FeaturesParams, scoring_date: date | None = None,
) -> FeatureSet:
    """Feature matrix for every record; open records (and all, without decision dates) at ``scoring_date``."""
    scoring = pd.Timestamp(scoring_date) if scoring_date else default_scoring_date(records, events)
    is_open = (records["outcome"] == OUTCOME_OPEN).to_numpy()
    decided = records["decision_date"]
    as_of = pd.Series(np.where(is_open | decided.isna().to_numpy(), scoring, decided), index=records.index)
    as_of = pd.to_datetime(as_of).astype("datetime64[us]")
    base = pd.DataFrame({
        "record_id": records["record_id"].astype("string").to_numpy(),
        "outcome": records["outcome"].astype("string").to_numpy(),
        "label": np.where(is_open, np.nan, (records["outcome"] == OUTCOME_WON).to_numpy(dtype=float)),
        "as_of": as_of.to_numpy(),
    }, index=records.index)
    columns, specs = field_features(records, fields, as_of=as_of)
    parts = [base, pd.DataFrame(columns, index=records.index)]
    if events is not None and len(events):
        types = event_types(events, limit=params.max_event_types)
        parts.append(intent_features(records["event_key"], as_of, events, types=types,
                                     windows=params.event_windows_days))
        specs += intent_specs(types, params.event_windows_days)
    matrix = pd.concat(parts, axis=1)[KEY_COLUMNS + [s.name for s in specs]].reset_index(drop=True)
    log.info("features: %d records (%d open, as of %s) x %d features", len(matrix), int(is_open.sum()),
             scoring.date(), len(specs))
    return FeatureSet(matrix=matrix, specs=specs)


def read_interim(interim_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, list[FieldInfo]]:
    """The records, events (if the export has an activity log) and field list that ingest wrote."""
    records_path, fields_path = interim_dir / RECORDS_FILE, interim_dir / FIELDS_FILE
    for path in (records_path, fields_path):
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore ingest` first")
    events_path = interim_dir / EVENTS_FILE
    events = pd.read_parquet(events_path) if events_path.exists() else None
    fields = [FieldInfo(**f) for f in read_json(fields_path)]
    return pd.read_parquet(records_path), events, fields


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


def run(settings: Settings) -> FeatureSet:
    """The features stage: ``paths.interim`` -> ``paths.features``."""
    records, events, fields = read_interim(settings.paths.interim)
    features = build_features(records, events, fields, params=settings.features,
                              scoring_date=settings.features.scoring_date)
    write_feature_set(features, settings.paths.features)
    return features
