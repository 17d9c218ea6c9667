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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.contracts.features import FeatureSet, read_feature_set
from pipeline.contracts.fields import OUTCOME_OPEN
from pipeline.contracts.files import DISPLAY_FILE, DRIFT_REPORT, LEAD_BOARD, SCORES_CSV, SCORES_MANIFEST, SCORES_PARQUET
from pipeline.errors import ConfigError, ModelError, RegistryError
from pipeline.feedback import FeedbackStore, evaluation_notes, with_feedback
from pipeline.io.files import OutputSet, output_set
from pipeline.io.tables import ChunkWriter, spreadsheet_safe, table_format
from pipeline.mlops.promotion import scoring_verdict
from pipeline.mlops.selection import CHAMPION, REGISTRY, scoring_model
from pipeline.mlops.tracking import Store
from pipeline.modeling.drift import DriftCounter
from pipeline.modeling.grades import GRADES
from pipeline.modeling.model import LoadedModel, check_features_match
from pipeline.reporting.board import render_board_html
from pipeline.runtime import progress_bar
from pipeline.scoring.batch import MANIFEST_SUFFIX, BatchSummary, drift_report, score_file, side_path
from pipeline.scoring.change import Explained, old_model_explainer
from pipeline.scoring.display import with_display, with_display_history
from pipeline.scoring.export import export_rows, instant
from pipeline.scoring.history import SCHEMA as HISTORY_SCHEMA
from pipeline.scoring.history import History, Previous, history_table
from pipeline.scoring.scorer import DETAIL_COLUMNS, Scorer, Tracking

log = logging.getLogger(__name__)


def write_scores(scores: pd.DataFrame, out_dir: Path, *, into: OutputSet | None = None) -> tuple[Path, Path]:
    """scores.csv (no JSON detail, safe to open in a spreadsheet) and scores.parquet (everything);
    with ``into``, as members of that set of outputs."""
    csv_path, parquet_path = out_dir / SCORES_CSV, out_dir / SCORES_PARQUET
    write_scores_file(scores, csv_path, into=into)
    write_scores_file(scores, parquet_path, into=into)
    return csv_path, parquet_path


def write_scores_file(scores: pd.DataFrame, path: Path, *, into: OutputSet | None = None) -> Path:
    """One scores file, atomically (or as a member of ``into``), as `score --input` writes one: CSV
    without the JSON detail (safe in a spreadsheet), or Parquet with it."""
    if table_format(path) == "csv":
        scores = scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores])
    with ChunkWriter(path, into=into) as writer:
        writer.write(scores)
    return path


def score_open(scorer: Scorer, rows: pd.DataFrame, *, scored_at: str, chunk_rows: int, track: Tracking | None,
               where: str, detail: bool = True, progress: bool = False) -> tuple[pd.DataFrame, DriftCounter]:
    """Score open records ``chunk_rows`` at a time (the score stage and `score --export` alike, so the
    two give the same bytes), sorted by score; with ``track``, the change since each lead's last run."""
    parts: list[pd.DataFrame] = []
    counter = DriftCounter(scorer.drift_reference)
    with progress_bar(len(rows), enabled=progress) as advance:
        for start in range(0, max(len(rows), 1), chunk_rows):
            chunk = rows.iloc[start:start + chunk_rows]
            scores, bad, chunk_counter = scorer.score_chunk(chunk, scored_at=scored_at, detail=detail, track=track)
            if len(bad):  # the features are built from validated records: a bug upstream, not bad input
                raise ModelError(f"{len(bad)} row(s) of {where} cannot be scored, e.g. {bad['reason'].iloc[0]}; "
                                 "rebuild the features")
            parts.append(scores)
            counter = counter.merge(chunk_counter)
            advance(len(chunk))
    scores = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return scores.sort_values(["score", "record_id"], ascending=[False, True], kind="stable"), counter


def tracking(settings: Settings, store: Store, scorer: Scorer, *, scored_at: str, job: str) -> Tracking | None:
    """The score history of this export, to append to and describe changes against (None: history off)."""
    if not settings.history.enabled:
        return None
    history = History(settings.paths.history, store.model_name)
    previous = Previous.of(history, scored_at=scored_at, runs=settings.history.trend_runs - 1)

    def load(version: str, registry_version: str | None) -> LoadedModel:
        if registry_version is None:
            raise ModelError("it was no registered version")
        model, _ = scoring_model(store, models_dir=settings.paths.models, which=registry_version)
        if model.version != version:
            raise ModelError(f"registry version {registry_version} is now {model.version}")
        return model

    def make(model: LoadedModel) -> Callable[[pd.DataFrame], Explained]:
        return Scorer(model, scorer.params, scorer.grade_bands, REGISTRY).explained

    return Tracking(previous=previous, old=old_model_explainer(load, make=make), params=settings.history,
                    model_name=store.model_name, job=job)


def record_history(settings: Settings, track: Tracking | None, *, scored_at: str,
                   display: pd.DataFrame | None = None, into: OutputSet | None = None) -> Path | None:
    """Append the run's rows to the score history (atomically, or as a member of ``into``; the same
    instant again replaces it)."""
    if track is None:
        return None
    history = History(settings.paths.history, track.model_name)
    table = pa.concat_tables(track.tables) if track.tables else history_table(
        pd.DataFrame(columns=[f.name for f in HISTORY_SCHEMA]), sources=[], contributions=np.zeros((0, 0)))
    table = with_display_history(table, display)
    if into is None:
        path = history.append(table, scored_at=scored_at)
    else:
        if table.schema != HISTORY_SCHEMA:
            raise ValueError("history rows must have the history schema")
        path = history.path_of(scored_at)
        pq.write_table(table, into.path(path, shared=True), compression="zstd")  # a rerun at this instant rewrites it
    changed = int(pd.Series(table.column("score_change").to_pandas()).fillna(0).ne(0).sum())
    log.info("score history: %d leads at %s (%d changed since their last run) -> %s", table.num_rows, scored_at,
             changed, path)
    return path


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
    scored_at = scoring_instant(open_rows)
    track = tracking(settings, store, scorer, scored_at=scored_at, job="stage") if scored_at else None
    scores, counter = score_open(scorer, open_rows, scored_at=scored_at, chunk_rows=settings.score.chunk_rows,
                                 track=track, where=str(paths.features))
    display = read_display(paths.interim)
    scores = with_display(scores, display)
    scores = with_feedback(scores, FeedbackStore.existing(settings.feedback, db=paths.feedback_db))  # reps' values
    with output_set(paths.scores / SCORES_MANIFEST, run_id=f"{scored_at} {model.version}") as outputs:
        csv_path = _publish_stage(settings, outputs, scores=scores, counter=counter, model=model, status=status)
        record_history(settings, track, scored_at=scored_at, display=display, into=outputs)
    counts = scores["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    log.info("scored %d open deals with the %s model %s (registry version %s) -> %s (grades %s)", len(scores), status,
             model.version, model.registry_version or "none", csv_path,
             ", ".join(f"{g}: {n}" for g, n in counts.items()))
    return scores


def _publish_stage(settings: Settings, outputs: OutputSet, *, scores: pd.DataFrame, counter: DriftCounter,
                   model: LoadedModel, status: str) -> Path:
    """The score stage's files, as members of ``outputs``: scores.csv, scores.parquet, the drift
    report and the lead board. Returns the CSV's path."""
    paths = settings.paths
    csv_path, _ = write_scores(scores, paths.scores, into=outputs)
    report = drift_report(counter, settings.drift)
    outputs.write_json(paths.scores / DRIFT_REPORT, report)
    shown = scores.head(settings.score.board_max_leads)  # sorted by score: the board lists the best leads
    bands = settings.grades.bands
    notes = [f"Model {model.version} ({status}); grades: A >= {bands[0]:g}, B >= {bands[1]:g}, C >= {bands[2]:g}"]
    if len(shown) < len(scores):
        notes.append(f"Showing the {len(shown):,} highest-scored of {len(scores):,} leads (score.board_max_leads); "
                     f"every lead is in {csv_path.name}.")
    notes += evaluation_notes(paths.evaluation)  # who was right, the model or the reps
    verdict = scoring_verdict(paths.promotion, model_version=model.version, status=status)
    if verdict is not None and verdict.warns:
        log.warning("%s", verdict.advice)  # the board's banner, word for word
    html = render_board_html(shown.assign(what_would_raise=shown["what_would_raise_detail"]), title="Lead board",
                             notes=notes, drift=report, verdict=verdict)
    log.info("lead board: %s", outputs.write_text(paths.scores / LEAD_BOARD, html))
    return csv_path


def read_display(interim: Path) -> pd.DataFrame | None:
    """The display-only columns ingest kept (company, contact, owner ...), or None before ingest wrote them."""
    path = interim / DISPLAY_FILE
    return pd.read_parquet(path) if path.exists() else None


@dataclass(frozen=True)
class ExportSummary:
    """What a `leadscore score --export` run did."""

    output: Path
    scored_at: str
    scored: int
    closed_skipped: int
    quarantined: int
    quarantine_path: Path | None
    history_path: Path | None
    model_version: str
    model_status: str


def run_export(settings: Settings, *, export_dir: Path, output_path: Path, model_name: str | None = None,
               scored_at: str | None = None, progress: bool = False) -> ExportSummary:
    """`leadscore score --export DIR --output OUT`: tonight's raw export scored with the champion, read
    and featurised with the recipe the champion was trained with (:mod:`pipeline.scoring.export`)."""
    table_format(output_path)  # an unknown output type, or a bad instant, fails before any work
    instant(scored_at)
    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    model, status = _choose(store, models_dir=settings.paths.models, which=model_name)
    rows = export_rows(model, export_dir, scored_at=scored_at)
    scorer = Scorer(model, settings.score, settings.grades.bands, status)
    matrix = rows.matrix if rows.matrix is not None else pd.DataFrame(columns=scorer.input_columns())
    if rows.matrix is None:
        log.warning("%s holds no open record: writing an empty %s", export_dir, output_path.name)
    track = tracking(settings, store, scorer, scored_at=rows.scored_at, job="export")
    rows = replace(rows, matrix=None)  # the matrix lives on as ``matrix`` only, and goes once scored
    scores, counter = score_open(scorer, matrix, scored_at=rows.scored_at, chunk_rows=settings.score.chunk_rows,
                                 track=track, where=str(export_dir), progress=progress,
                                 detail=table_format(output_path) == "parquet")
    del matrix
    scores = with_display(scores, rows.display)
    scores = with_feedback(scores, FeedbackStore.existing(settings.feedback, db=settings.paths.feedback_db))
    quarantine = rows.quarantine
    quarantine_path = side_path(output_path, ".quarantine.csv")
    drift_path = side_path(output_path, ".drift.json")
    with output_set(side_path(output_path, MANIFEST_SUFFIX), run_id=f"{rows.scored_at} {model.version}") as outputs:
        write_scores_file(scores, output_path, into=outputs)
        if len(quarantine):
            spreadsheet_safe(quarantine).to_csv(outputs.path(quarantine_path), index=False)
            log.warning("%d row(s) of the export were quarantined, each with its reason, in %s", len(quarantine),
                        quarantine_path)
        else:
            outputs.remove(quarantine_path)  # an old run's quarantine must not look like this run's
        if len(scores):
            outputs.write_json(drift_path, drift_report(counter, settings.drift))
        else:
            outputs.remove(drift_path)
        history_path = record_history(settings, track, scored_at=rows.scored_at, display=rows.display, into=outputs)
    closed = rows.outcomes["won"] + rows.outcomes["lost"]
    log.info("scored %d open leads of %s as of %s with the %s model %s (registry version %s) -> %s; %d closed "
             "skipped, %d rows quarantined", len(scores), export_dir, rows.scored_at, status, model.version,
             model.registry_version or "none", output_path, closed, len(quarantine))
    return ExportSummary(output=output_path, scored_at=rows.scored_at, scored=len(scores), closed_skipped=closed,
                         quarantined=len(quarantine), quarantine_path=quarantine_path if len(quarantine) else None,
                         history_path=history_path, model_version=model.version, model_status=status)


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
