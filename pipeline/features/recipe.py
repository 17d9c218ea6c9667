"""How a feature matrix is made from an export: the ``source:`` mapping, the feature, ICP and
qualification settings, and the activity types that have features of their own.

The features stage writes it beside the matrix (``recipe.json``); the train stage puts it in the
model's metadata, so the model carries it to scoring. ``leadscore score --export`` reads a night's
raw export with the recipe of the model that scores it, never with today's params.yaml: a params
edit since cannot silently change the features a model sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from pipeline.config import FeaturesParams, IcpParams, SourceParams
from pipeline.contracts.features import FeatureSet
from pipeline.contracts.fields import FieldInfo
from pipeline.errors import ModelError
from pipeline.features.build import build_features
from pipeline.features.events import EventLog, PendingEventLog
from pipeline.features.qualification import Framework

RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    source: SourceParams          # the explicit mapping; its ``dir`` is where a given export is
    features: FeaturesParams
    icp: IcpParams
    framework: Framework          # the rules themselves, not a file name that could change
    event_types: list[str] | None  # None: the export had no activity log

    def as_json(self) -> dict[str, Any]:
        return {"recipe_version": RECIPE_VERSION,
                "source": self.source.model_dump(mode="json", exclude={"dir"}),
                "features": self.features.model_dump(mode="json"),
                "icp": self.icp.model_dump(mode="json"),
                "framework": self.framework.model_dump(mode="json"),
                "event_types": self.event_types}

    @classmethod
    def from_json(cls, raw: Any, *, where: str) -> Recipe:
        """A stored recipe, validated: a problem raises :class:`ModelError` naming the key."""
        if not isinstance(raw, dict) or raw.get("recipe_version") != RECIPE_VERSION:
            raise ModelError(f"{where}: the recipe is not one this version of leadscore reads "
                             f"(recipe_version {raw.get('recipe_version') if isinstance(raw, dict) else None!r}); "
                             "retrain the model")
        parts: dict[str, Any] = {}
        for key, kind in (("source", SourceParams), ("features", FeaturesParams), ("icp", IcpParams),
                          ("framework", Framework)):
            try:
                parts[key] = kind.model_validate(raw.get(key))
            except ValidationError as exc:
                first = exc.errors()[0]
                raise ModelError(f"{where}: recipe.{key}.{'.'.join(map(str, first['loc']))}: {first['msg']}; "
                                 "retrain the model") from None
        types = raw.get("event_types")
        if types is not None and not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
            raise ModelError(f"{where}: recipe.event_types must be a list of names; retrain the model")
        return cls(event_types=types, **parts)

    def source_in(self, folder: Path) -> SourceParams:
        """The mapping reading the export in ``folder``: relative file names resolve there, and so do
        absolute ones, by their name (the training export's own folder is not tonight's)."""
        def moved(table: dict[str, Any]) -> dict[str, Any]:
            file = Path(table["file"])
            return {**table, "file": str(Path(file.name) if file.is_absolute() else file)}

        raw = self.source.model_dump(mode="json")
        raw["dir"] = str(folder)
        if raw.get("primary"):
            raw["primary"] = moved(raw["primary"])
        raw["lookups"] = {name: moved(t) for name, t in raw.get("lookups", {}).items()}
        if raw.get("events"):
            raw["events"] = moved(raw["events"])
        return SourceParams.model_validate(raw)

    def build(self, records: pd.DataFrame, events: EventLog | PendingEventLog | pd.DataFrame | None,
              fields: list[FieldInfo], *, scoring_date: date | pd.Timestamp,
              event_accounts: pd.DataFrame | None) -> FeatureSet:
        """The feature matrix of ``records`` as the recipe's model was trained on, as of ``scoring_date``."""
        return build_features(records, events, fields, params=self.features, scoring_date=scoring_date,
                              event_accounts=event_accounts, icp=self.icp, framework=self.framework,
                              event_types=self.event_types)
