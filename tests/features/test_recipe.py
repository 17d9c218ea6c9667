"""The recipe a model carries to scoring: it reads back as written, refuses a damaged copy naming the
key, resolves tonight's files in tonight's folder, and pins the activity types whatever tonight's
frequencies are."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import FeaturesParams, IcpParams
from pipeline.data.sources import explicit_mapping
from pipeline.errors import ModelError
from pipeline.features.qualification import load_framework
from pipeline.features.recipe import Recipe


def _recipe(small, types: list[str] | None = None) -> Recipe:
    return Recipe(source=explicit_mapping(small.settings.source), features=FeaturesParams(), icp=IcpParams(),
                  framework=load_framework("bant"), event_types=types or small.features.report["event_types"])


def test_a_recipe_reads_back_as_written_and_a_damaged_one_names_its_key(small) -> None:
    recipe = _recipe(small)
    again = Recipe.from_json(recipe.as_json(), where="model x")
    assert again.as_json() == recipe.as_json() and again.event_types == recipe.event_types
    damaged = recipe.as_json()
    damaged["features"]["event_windows_days"] = "weekly"
    with pytest.raises(ModelError, match=r"model x: recipe\.features\.event_windows_days"):
        Recipe.from_json(damaged, where="model x")
    with pytest.raises(ModelError, match="recipe_version"):
        Recipe.from_json({**recipe.as_json(), "recipe_version": 99}, where="model x")


def test_tonights_files_resolve_in_tonights_folder(small, tmp_path: Path) -> None:
    recipe = _recipe(small)
    raw = recipe.as_json()
    raw["source"]["primary"]["file"] = "/old/export/deals.csv"  # an absolute name at training time
    moved = Recipe.from_json(raw, where="m").source_in(tmp_path)
    assert moved.primary is not None
    assert moved.dir == tmp_path and moved.path(moved.primary.file) == tmp_path / "deals.csv"
    assert moved.path(moved.lookups["leads"].file) == tmp_path / "leads.csv"


def test_pinned_activity_types_give_the_models_columns_whatever_tonight_holds(small) -> None:
    ingested = small.ingested
    records = ingested.records[ingested.records["outcome"] == "open"].head(50).reset_index(drop=True)
    types = small.features.report["event_types"]
    assert "demo_request" in types
    events = ingested.events[ingested.events["event_type"] != "demo_request"]  # none tonight
    built = _recipe(small).build(records, events, ingested.fields, scoring_date=pd.Timestamp("2026-01-01"),
                                 event_accounts=ingested.event_accounts)
    assert {s.name for s in small.features.specs} <= set(built.matrix.columns)
    assert (built.matrix["evt_demo_request_30d"] == 0).all()
    assert built.report["event_types"] == types
