"""The score stage: every open record of the feature matrix scored with the champion, sorted by score,
into ``paths.scores`` (scores.csv for a CRM, scores.parquet with the JSON detail), with the lead
board and the drift report; and ``leadscore score --input X --output Y``, any feature-matrix file
scored in chunks or on Dask (:func:`run_batch`).

The model is the registry's champion. If no model has ever passed the gates, the freshly trained
one scores, and every row says ``model_status = unpromoted``: scores exist, but nobody should
mistake them for a model that beat chance and the baselines.

The stage stamps ``scored_at`` with the instant the open records are scored as of (their as-of
date: the export's scoring date), not the wall clock, so a rerun on the same data gives
byte-identical outputs and DVC sees nothing changed. ``--input`` runs stamp the time they run
(or ``--scored-at``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.config import Settings
from pipeline.contracts.features import FeatureSet, read_feature_set
from pipeline.contracts.fields import OUTCOME_OPEN
from pipeline.contracts.files import DRIFT_REPORT, LEAD_BOARD, SCORES_CSV, SCORES_PARQUET
from pipeline.errors import ConfigError, ModelError, RegistryError
from pipeline.io.files import atomic_path, write_json
from pipeline.io.tables import spreadsheet_safe
from pipeline.mlops.selection import CHAMPION, scoring_model
from pipeline.mlops.tracking import Store
from pipeline.modeling.grades import GRADES
from pipeline.modeling.model import LoadedModel, check_features_match
from pipeline.reporting.board import render_board
from pipeline.scoring.batch import BatchSummary, drift_report, score_file
from pipeline.scoring.scorer import DETAIL_COLUMNS, Scorer

log = logging.getLogger(__name__)


def write_scores(scores: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """scores.csv (no JSON detail, safe to open in a spreadsheet) and scores.parquet (everything)."""
    csv_path, parquet_path = out_dir / SCORES_CSV, out_dir / SCORES_PARQUET
    with atomic_path(csv_path) as tmp:
        spreadsheet_safe(scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores])).to_csv(tmp, index=False)
    with atomic_path(parquet_path) as tmp:
        scores.to_parquet(tmp, index=False)
    return csv_path, parquet_path


def scoring_instant(open_rows: pd.DataFrame) -> str:
    """The instant the open records are scored as of: their as-of date (the export's scoring date)."""
    as_of = pd.to_datetime(open_rows["as_of"]).max()
    return "" if pd.isna(as_of) else pd.Timestamp(as_of).strftime("%Y-%m-%dT%H:%M:%SZ")


def _choose(store: Store, *, models_dir: Path, which: str | None = None) -> tuple[LoadedModel, str]:
    """:func:`scoring_model`, with the explicit way round an unreachable registry named."""
    try:
        return scoring_model(store, models_dir=models_dir, which=which)
    except RegistryError as exc:
        raise RegistryError(f"{exc}. Nothing was scored. To score with the local model files on purpose: "
                            f"`leadscore score --input FILE --output OUT --model {models_dir}`") from exc


def _check_matrix(model: LoadedModel, features: FeatureSet, *, status: str, store: Store) -> None:
    """The scoring model's features must be in the matrix; for a champion trained on other features,
    say which model is whose and the two ways out."""
    try:
        check_features_match(model, features)
    except ModelError as exc:
        if status != CHAMPION:
            raise
        raise ModelError(f"the champion of {store.model_name} (registry version {model.registry_version}, "
                         f"{model.version}) was trained on other features: {exc}. The features, icp or qualification "
                         "params changed since, and no model on the current features has become the champion "
                         "(reports/promotion.json says why). Restore the params it was trained with, or make the "
                         "new model the champion once you have read its gates: `leadscore rollback --to VERSION`"
                         ) from None


def run(settings: Settings) -> pd.DataFrame:
    paths = settings.paths
    store = Store.of(settings.registry, source=settings.source, mlflow_db=paths.mlflow_db)
    model, status = _choose(store, models_dir=paths.models)
    features = read_feature_set(paths.features)
    _check_matrix(model, features, status=status, store=store)
    open_rows = features.matrix[features.matrix["outcome"] == OUTCOME_OPEN]
    scorer = Scorer(model, settings.score, settings.grades.bands, status)
    scores, bad, counter = scorer.score_chunk(open_rows, scored_at=scoring_instant(open_rows), detail=True)
    if len(bad):  # the features stage writes clean rows: this is a bug upstream, not bad input
        raise ModelError(f"{len(bad)} row(s) of {paths.features} cannot be scored, e.g. "
                         f"{bad['reason'].iloc[0]}; rebuild the features")
    scores = scores.sort_values(["score", "record_id"], ascending=[False, True], kind="stable")
    csv_path, _ = write_scores(scores, paths.scores)
    report = drift_report(counter, settings.drift)
    write_json(paths.scores / DRIFT_REPORT, report)
    shown = scores.head(settings.score.board_max_leads)  # sorted by score: the board lists the best leads
    bands = settings.grades.bands
    notes = [f"Model {model.version} ({status}); grades: A >= {bands[0]:g}, B >= {bands[1]:g}, C >= {bands[2]:g}"]
    if len(shown) < len(scores):
        notes.append(f"Showing the {len(shown):,} highest-scored of {len(scores):,} leads (score.board_max_leads); "
                     f"every lead is in {csv_path.name}.")
    board = render_board(shown.assign(what_would_raise=shown["what_would_raise_detail"]), paths.scores / LEAD_BOARD,
                         title="Lead board", notes=notes, drift=report)
    log.info("lead board: %s", board)
    counts = scores["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    log.info("scored %d open deals with the %s model %s (registry version %s) -> %s (grades %s)", len(scores), status,
             model.version, model.registry_version or "none", csv_path,
             ", ".join(f"{g}: {n}" for g, n in counts.items()))
    return scores


def run_batch(settings: Settings, *, input_path: Path, output_path: Path, model_name: str | None = None,
              chunk_rows: int | None = None, scored_at: str | None = None, explain: bool | None = None,
              engine: str = "local", scheduler: str | None = None, workers: int | None = None,
              progress: bool = False) -> BatchSummary:
    """`leadscore score --input --output`: score a feature-matrix file with the champion (or
    ``model_name``: a registry version or alias, or a model folder), here or on Dask (whose partitions
    are the input's row groups or 64 MB CSV blocks, not ``chunk_rows``)."""
    params = settings.score if explain is None else settings.score.model_copy(update={"explain": explain})
    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    model, status = _choose(store, models_dir=settings.paths.models, which=model_name)
    scorer = Scorer(model, params, settings.grades.bands, status)
    if engine == "dask":
        try:
            from pipeline.scoring.dask import score_dask
        except ImportError as exc:
            raise ConfigError(f"--engine dask needs dask and distributed ({exc}): "
                              "pip install 'leadscore[dask]'") from exc
        return score_dask(scorer, input_path=input_path, output_path=output_path, drift=settings.drift,
                          scheduler=scheduler, workers=workers, progress=progress, scored_at=scored_at)
    return score_file(scorer, input_path=input_path, output_path=output_path, drift=settings.drift,
                      chunk_rows=chunk_rows or params.chunk_rows, progress=progress, scored_at=scored_at)
