"""The features stage: ``paths.interim`` -> the point-in-time feature matrix and spec in
``paths.features``, with the leakage guard applied, and its report -> ``paths.features_report``."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Settings, SourceParams
from pipeline.contracts.features import FeatureSet, write_feature_set
from pipeline.contracts.fields import FieldInfo
from pipeline.data.clock import ExportClock
from pipeline.features.build import build_features
from pipeline.features.dask import DaskEvents
from pipeline.features.events import EventLog, PendingEventLog
from pipeline.features.fields import allowed_personal, refuse_personal
from pipeline.features.interim import read_interim
from pipeline.features.qualification import load_framework
from pipeline.features.recipe import Recipe
from pipeline.io.files import write_json
from pipeline.modeling.leakage import LeakageAudit


def featurise(records: pd.DataFrame, events: EventLog | PendingEventLog | DaskEvents | pd.DataFrame | None,
              fields: list[FieldInfo], *, settings: Settings, event_accounts: pd.DataFrame | None = None,
              clock: ExportClock | None = None, mapping: SourceParams | None = None) -> FeatureSet:
    """:func:`build_features` with the stage's params, the leakage guard measuring each group as it is
    built; the features it drops are left out of the spec (their columns stay in the matrix). Open
    leads are scored as of ``features.scoring_date`` if set, else as of the export's ``clock``.
    A field that looks personal is refused first (DataError) unless ``mapping`` (the source the
    export was read with: ingest's mapping.json) allows it."""
    refuse_personal(records, fields, allowed=allowed_personal(mapping) if mapping is not None else ())
    audit = LeakageAudit(max_auc=settings.features.leakage_max_auc, valid_fraction=settings.split.valid_fraction,
                         test_fraction=settings.split.test_fraction, seed=settings.seed)
    scoring, used = scoring_instant(settings, clock)
    features = build_features(records, events, fields, params=settings.features,
                              scoring_date=scoring, event_accounts=event_accounts,
                              icp=settings.icp, framework=settings.qualification.framework, audit=audit)
    kept, leakage = audit.finish(features.specs)
    return FeatureSet(matrix=features.matrix, specs=kept,
                      report={**features.report, "scoring_instant": used, "leakage": leakage})


def scoring_instant(settings: Settings, clock: ExportClock | None) -> tuple[pd.Timestamp | None, dict[str, Any]]:
    """The instant open leads are scored as of, and what it came from (for the features report)."""
    if settings.features.scoring_date is not None:
        at = pd.Timestamp(settings.features.scoring_date)
        return at, {"instant": at.isoformat(), "from": "features.scoring_date"}
    if clock is not None:
        return clock.instant, {"instant": pd.Timestamp(clock.instant).isoformat(),
                               "from": f"the export's date {clock.day}: {clock.rule}",
                               "latest_date_seen": clock.as_dict()["latest_seen"]}
    return None, {"instant": None, "from": "the latest date in the export (no clock recorded by ingest)"}


def recipe(settings: Settings, *, mapping: dict[str, Any] | None, event_types: list[str] | None
           ) -> dict[str, Any] | None:
    """How this matrix was made from the export, for the model to carry (None: ingest wrote no mapping)."""
    if mapping is None:
        return None
    return Recipe(source=SourceParams.model_validate(mapping), features=settings.features, icp=settings.icp,
                  framework=load_framework(settings.qualification.framework), event_types=event_types).as_json()


def run(settings: Settings, *, engine: str = "local", scheduler: str | None = None,
        workers: int | None = None) -> FeatureSet:
    """The stage. ``engine="dask"`` computes the intent features on a Dask cluster (``scheduler``'s,
    or a LocalCluster of ``workers``): the same matrix, bit for bit."""
    with ExitStack() as stack:
        def on_cluster(path: Path) -> DaskEvents:
            return stack.enter_context(DaskEvents(path, scheduler=scheduler, workers=workers))

        interim = read_interim(settings.paths.interim, events_on=on_cluster if engine == "dask" else None)
        clock = ExportClock.from_dict(interim.clock) if interim.clock else None
        mapping = SourceParams.model_validate(interim.mapping) if interim.mapping is not None else None
        features = featurise(interim.records, interim.events, interim.fields, settings=settings,
                             event_accounts=interim.event_accounts, clock=clock, mapping=mapping)
    features = replace(features, recipe=recipe(settings, mapping=interim.mapping,
                                               event_types=features.report.get("event_types")))
    write_feature_set(features, settings.paths.features)
    write_json(settings.paths.features_report, features.report)
    return features
