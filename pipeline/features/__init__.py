"""The features stage: one row per deal, each feature taken as of the deal's as-of date.

The as-of date is the decision date (``closed_date``) for a closed deal and the scoring date for
an open one, so training sees exactly what scoring will see: nothing that happened later.
The same :func:`build_features` serves training and scoring.
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
from pipeline.features.contact import SPECS as CONTACT_SPECS
from pipeline.features.contact import contact_features
from pipeline.features.firmographic import SPECS as FIRMOGRAPHIC_SPECS
from pipeline.features.firmographic import firmographic_features
from pipeline.features.intent import intent_features, intent_specs
from pipeline.features.qualification import SPECS as QUALIFICATION_SPECS
from pipeline.features.qualification import qualification_features
from pipeline.features.spec import FeatureSpec
from pipeline.io import atomic_path, read_json, write_json
from pipeline.schema import FEATURE_SPEC_FILE, FEATURES_FILE, OUTCOME_OPEN, OUTCOME_WON, TABLES

log = logging.getLogger(__name__)

# Columns of the feature matrix that are not features.
KEY_COLUMNS = ["deal_id", "lead_id", "account_id", "outcome", "label", "as_of"]


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix (keys, outcome, label and features) and the spec of each feature."""

    matrix: pd.DataFrame
    specs: list[FeatureSpec]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def feature_specs(params: FeaturesParams) -> list[FeatureSpec]:
    return [*FIRMOGRAPHIC_SPECS, *CONTACT_SPECS, *QUALIFICATION_SPECS, *intent_specs(params.event_windows_days)]


def default_scoring_date(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The export's own date: midnight after its latest record."""
    latest = max(
        tables["events"]["timestamp"].max(),
        tables["deals"]["created_date"].max(),
        tables["deals"]["closed_date"].max(),
        tables["leads"]["created_date"].max(),
    )
    return (pd.Timestamp(latest) + pd.Timedelta(days=1)).normalize()


def build_features(
    tables: dict[str, pd.DataFrame], *, params: FeaturesParams, scoring_date: date | None = None,
) -> FeatureSet:
    """Feature matrix for every deal; open deals are taken as of ``scoring_date``."""
    deals = tables["deals"]
    as_of_open = pd.Timestamp(scoring_date) if scoring_date else default_scoring_date(tables)
    is_open = deals["outcome"] == OUTCOME_OPEN
    lead_account = tables["leads"].set_index("lead_id")["account_id"]
    base = pd.DataFrame({
        "deal_id": deals["deal_id"].to_numpy(dtype=object),
        "lead_id": deals["lead_id"].to_numpy(dtype=object),
        "account_id": lead_account.reindex(deals["lead_id"].to_numpy()).to_numpy(dtype=object),
        "outcome": deals["outcome"].to_numpy(dtype=object),
        "label": np.where(is_open, np.nan, (deals["outcome"] == OUTCOME_WON).astype(float)),
        "as_of": pd.to_datetime(np.where(is_open, as_of_open, deals["closed_date"])).astype("datetime64[us]"),
        "amount": deals["amount"].to_numpy(dtype=float),
    })
    parts = [
        firmographic_features(base, tables["accounts"]),
        contact_features(base, tables["leads"]),
        qualification_features(base, tables["leads"]),
        intent_features(base, tables["events"], windows=params.event_windows_days),
    ]
    specs = feature_specs(params)
    matrix = pd.concat([base[KEY_COLUMNS], *parts], axis=1)
    matrix = matrix[KEY_COLUMNS + [s.name for s in specs]]
    log.info("features: %d deals (%d open, as of %s) x %d features",
             len(matrix), int(is_open.sum()), as_of_open.date(), len(specs))
    return FeatureSet(matrix=matrix, specs=specs)


def read_interim(interim_dir: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for name in TABLES:
        path = interim_dir / f"{name}.parquet"
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore ingest` first")
        tables[name] = pd.read_parquet(path)
    return tables


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
    features = build_features(read_interim(settings.paths.interim), params=settings.features,
                              scoring_date=settings.features.scoring_date)
    write_feature_set(features, settings.paths.features)
    return features
