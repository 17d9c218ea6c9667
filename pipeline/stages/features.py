"""The features stage: ``paths.interim`` -> the point-in-time feature matrix and spec in
``paths.features``, with the leakage guard applied, and its report -> ``paths.features_report``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from pipeline.config import Settings, SourceParams
from pipeline.contracts.features import FeatureSet, write_feature_set
from pipeline.contracts.fields import FieldInfo
from pipeline.features.build import build_features
from pipeline.features.events import EventLog, PendingEventLog
from pipeline.features.interim import read_interim
from pipeline.features.qualification import load_framework
from pipeline.features.recipe import Recipe
from pipeline.io.files import write_json
from pipeline.modeling.leakage import LeakageAudit


def featurise(records: pd.DataFrame, events: EventLog | PendingEventLog | pd.DataFrame | None,
              fields: list[FieldInfo], *, settings: Settings, event_accounts: pd.DataFrame | None = None
              ) -> FeatureSet:
    """:func:`build_features` with the stage's params, the leakage guard measuring each group as it is
    built; the features it drops are left out of the spec (their columns stay in the matrix)."""
    audit = LeakageAudit(max_auc=settings.features.leakage_max_auc, valid_fraction=settings.split.valid_fraction,
                         test_fraction=settings.split.test_fraction, seed=settings.seed)
    features = build_features(records, events, fields, params=settings.features,
                              scoring_date=settings.features.scoring_date, event_accounts=event_accounts,
                              icp=settings.icp, framework=settings.qualification.framework, audit=audit)
    kept, leakage = audit.finish(features.specs)
    return FeatureSet(matrix=features.matrix, specs=kept, report={**features.report, "leakage": leakage})


def recipe(settings: Settings, *, mapping: dict[str, Any] | None, event_types: list[str] | None
           ) -> dict[str, Any] | None:
    """How this matrix was made from the export, for the model to carry (None: ingest wrote no mapping)."""
    if mapping is None:
        return None
    return Recipe(source=SourceParams.model_validate(mapping), features=settings.features, icp=settings.icp,
                  framework=load_framework(settings.qualification.framework), event_types=event_types).as_json()


def run(settings: Settings) -> FeatureSet:
    interim = read_interim(settings.paths.interim)
    features = featurise(interim.records, interim.events, interim.fields, settings=settings,
                         event_accounts=interim.event_accounts)
    features = replace(features, recipe=recipe(settings, mapping=interim.mapping,
                                               event_types=features.report.get("event_types")))
    write_feature_set(features, settings.paths.features)
    write_json(settings.paths.features_report, features.report)
    return features
