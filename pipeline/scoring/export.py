"""A raw export made ready to score: `leadscore score --export DIR` (the nightly job).

The export is read with the mapping, and its features built with the settings and activity types,
of the recipe the scoring model was trained with (:mod:`pipeline.features.recipe`), as of the
scoring instant, with the same point-in-time code as training. Only open records are built and
scored; closed ones are counted and skipped, and quarantined rows keep their reasons. No outcome
is needed: an export holding only open leads scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.contracts.fields import OUTCOME_OPEN
from pipeline.data.clock import declared_clock
from pipeline.data.ingest import ingest
from pipeline.errors import ConfigError, DataError, ModelError
from pipeline.features.recipe import Recipe
from pipeline.modeling.model import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRows:
    """The open records of an export as feature-matrix rows, and what was read to get them."""

    matrix: pd.DataFrame | None   # open records only, as the model's recipe builds them; None: no open record
    scored_at: str                # the instant they are taken as of, ISO 8601 UTC
    quarantine: pd.DataFrame      # the export's rows that could not be used, with their reasons
    outcomes: dict[str, int]      # records kept per outcome: won and lost are skipped
    display: pd.DataFrame | None = None  # the open records' display-only columns (source.display)


def recipe_of(model: LoadedModel) -> Recipe:
    """The recipe the model carries, or a clear error for a model trained before models carried one."""
    if model.meta.recipe is None:
        raise ModelError(f"model {model.version} was trained before models carried the mapping and feature "
                         "settings they were built with, so a raw export cannot be scored with it as it was "
                         "trained; retrain it (`make run`), or build the features with `leadscore ingest` and "
                         "`leadscore features` and use `score --input`")
    return Recipe.from_json(model.meta.recipe, where=f"model {model.version}'s metadata")


def instant(value: str | None) -> pd.Timestamp | None:
    """``--scored-at`` as a UTC instant without a zone (dates are midnight), or None."""
    if value is None:
        return None
    try:
        when = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"--scored-at {value!r} is not a date or time; e.g. 2026-01-05 or 2026-01-05T02:00:00Z"
                          ) from None
    if pd.isna(when):
        raise ConfigError(f"--scored-at {value!r} is not a date or time")
    return when.tz_convert("UTC").tz_localize(None) if when.tzinfo is not None else when


def stamp_of(when: pd.Timestamp) -> str:
    return pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_rows(model: LoadedModel, export_dir: Path, *, scored_at: str | None) -> ExportRows:
    """Read ``export_dir`` with the model's recipe and build its open records' features."""
    recipe = recipe_of(model)
    if not export_dir.is_dir():
        raise DataError(f"--export {export_dir}: no such folder (the folder holding the export's files)")
    when = instant(scored_at)
    # Tonight's export has a date of its own: the model's source.clock.export_date was its training export's.
    source = recipe.source_in(export_dir)
    source = source.model_copy(update={"clock": source.clock.model_copy(update={"export_date": None})})
    declared = declared_clock(when, rule="declared: --scored-at") if when is not None else None
    read = ingest(source, for_training=False, clock_at=declared)
    outcomes = read.outcome_counts()
    if when is None:
        if read.clock is not None:
            when = pd.Timestamp(read.clock.instant)
            log.info("%s: the export's date is %s (%s)", export_dir, read.clock.day, read.clock.rule)
        else:
            fixed = recipe.features.scoring_date
            if fixed is None:
                raise DataError(f"{export_dir}: the export has no dates to score as of; pass --scored-at")
            when = pd.Timestamp(fixed)
            log.warning("the export has no dates: scoring as of %s, the model's features.scoring_date; pass "
                        "--scored-at to score as of another instant", fixed)
    is_open = (read.records["outcome"] == OUTCOME_OPEN).to_numpy()
    records = read.records[is_open].reset_index(drop=True)
    matrix = None
    if len(records):
        matrix = recipe.build(records, read.events, read.fields, scoring_date=when,
                              event_accounts=read.event_accounts).matrix
    skipped = outcomes["won"] + outcomes["lost"]
    log.info("%s: %d records kept: %d open to score, %d closed skipped (%d won, %d lost), as of %s", export_dir,
             len(read.records), outcomes[OUTCOME_OPEN], skipped, outcomes["won"], outcomes["lost"], stamp_of(when))
    # Only the open rows' features, the quarantine and the counts leave: the export's tables are let go
    # before scoring starts.
    display = read.display[is_open].reset_index(drop=True) if read.display is not None else None
    return ExportRows(matrix=matrix, scored_at=stamp_of(when), quarantine=read.quarantine, outcomes=outcomes,
                      display=display)
