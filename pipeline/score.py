"""The score stage: probability, score 0-100, grade and top SHAP reasons for every open record.

The model is the registry's champion (``@champion``, see :mod:`pipeline.registry`). If no model
has ever passed the gates, the freshly trained one scores, and every row says
``model_status = unpromoted`` (and the stage warns): scores exist, but nobody should mistake them
for a model that beat chance and the baselines.

Reasons come from LightGBM's exact TreeSHAP (``pred_contrib``) in log-odds. For every lead the
stage checks that the contributions plus the base value equal the model's raw score; a
mismatch stops the stage. Reasons name the model feature for now; rep-facing wording comes later.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import registry, treeshap
from pipeline.board import render_board
from pipeline.calibration import score_points
from pipeline.chunks import ChunkReader, ChunkWriter, spreadsheet_safe, table_format
from pipeline.config import DriftParams, RoutingParams, ScoreParams, Settings
from pipeline.drift import DriftCounter, drift_warning
from pipeline.errors import DataError, ModelError
from pipeline.explain import (
    Groups,
    Ranked,
    Template,
    default_templates,
    join_strings,
    json_arrays,
    json_strings,
    lead_features,
    load_templates,
    rank_reasons,
    word,
)
from pipeline.features import read_feature_set
from pipeline.features.spec import FeatureSpec
from pipeline.io import atomic_path, write_json
from pipeline.model import LoadedModel, check_features_match, load_model
from pipeline.schema import MODEL_META_FILE, OUTCOME_OPEN, SCORES_CSV, SCORES_PARQUET

log = logging.getLogger(__name__)

ADDITIVITY_TOLERANCE = 1e-6
GRADES = ("A", "B", "C", "D")


def grade(scores: np.ndarray, bands: list[float]) -> np.ndarray:
    """A for score >= bands[0], B for >= bands[1], C for >= bands[2], else D."""
    index = np.searchsorted(-np.asarray(bands, dtype=float), -scores.astype(float), side="left")
    return np.array(GRADES, dtype=object)[index]


def contributions(model: LoadedModel, x: pd.DataFrame, *, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP values per feature and the base value, in log-odds, checked for additivity against
    LightGBM's raw score. ``method``: see ``score.shap`` (kernel, pred_contrib or auto)."""
    if not len(x):
        return np.zeros((0, len(model.specs))), np.zeros(0)
    raw = np.asarray(model.booster.predict(x, raw_score=True), dtype=float)
    # "auto": our kernel once its tables exist or the batch pays for building them (pipeline.treeshap)
    built = "explainer" in model.__dict__ or (method == "auto" and len(x) >= treeshap.AUTO_MIN_ROWS_TO_BUILD)
    contrib = treeshap.contributions(model.booster, x, method=method,
                                     explainer=model.explainer if method == "kernel" or built else None)
    phi, base = contrib[:, :-1], contrib[:, -1]
    gap = np.abs(phi.sum(axis=1) + base - raw)
    if len(gap) and gap.max() > ADDITIVITY_TOLERANCE:
        worst = int(gap.argmax())
        raise ModelError(f"SHAP contributions do not add up to the model score for row {worst} "
                         f"(off by {gap[worst]:.2e}); refusing to write explanations that are not exact")
    return phi, base


def score_of(model: LoadedModel, x: pd.DataFrame) -> np.ndarray:
    """Scores 0-100 of model-matrix rows: calibrated probability x 100, rounded."""
    return score_points(model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float)))


def what_would_raise(model: LoadedModel, x: pd.DataFrame, phi: np.ndarray, before: np.ndarray, *, top: int,
                     min_contribution: float, templates: tuple[Template, ...] | list[Template],
                     groups: Groups | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, for its ``top`` most negative actionable factors (intent and qualification, never
    firmographics): the score it gets when that factor is set to a value typical of won deals, by
    re-scoring the modified lead (``before``: the leads' scores as they are). Listed only when the
    score would rise, biggest rise first. Returns the "; "-joined texts and the JSON detail per lead."""
    n = len(x)
    typical = model.meta.get("typical_won") or {}
    groups = groups or Groups.of(model.specs)
    if not typical or not n:
        return np.full(n, "", dtype=object), np.full(n, "[]", dtype=object)
    contribution = groups.sum(phi)
    usable = np.array([all(typical.get(model.specs[j].name) is not None for j in m) for m in groups.members])
    negative = np.where(groups.actionable & usable & (contribution <= -min_contribution), contribution, np.inf)
    picks = np.argsort(negative, axis=1, kind="stable")[:, :top]
    rows = np.arange(n)
    valid = np.isfinite(negative[rows[:, None], picks])
    first_seen = pd.unique(picks[valid].ravel())
    after = np.full(picks.shape, -1, dtype=np.int64)
    text = np.full(picks.shape, "", dtype=object)
    lead = lead_features(phi, groups)
    for g in first_seen:
        at_row, at_slot = np.nonzero(valid & (picks == g))
        changed = x.iloc[at_row].copy()
        for j in groups.members[g]:
            spec = model.specs[j]
            if spec.kind == "categorical":
                changed[spec.name] = pd.Categorical([typical[spec.name]] * len(at_row),
                                                    categories=changed[spec.name].cat.categories)
            else:
                changed[spec.name] = float(typical[spec.name])
        after[at_row, at_slot] = score_of(model, changed)
        for j in np.unique(lead[at_row, g]):
            spec = model.specs[int(j)]
            like = word(spec, typical[spec.name], group=groups.titles[g], templates=templates)
            text[at_row[lead[at_row, g] == j], at_slot[lead[at_row, g] == j]] = like
    rises = valid & (after > before[:, None])
    # Biggest rise first; a tie keeps the lead's own order (most negative factor first), so a lead's
    # text never depends on which other leads share its batch.
    order = np.argsort(np.where(rises, -after, np.iinfo(np.int64).max), axis=1, kind="stable")
    picks, after, text, rises = (np.take_along_axis(a, order, axis=1) for a in (picks, after, text, rises))
    before_text = before.astype(str).astype(object)
    flat, parts = np.full(n, "", dtype=object), []
    titles = np.asarray(groups.titles, dtype=object)
    for s in range(picks.shape[1]):
        after_text = after[:, s].astype(str).astype(object)
        line = join_strings(text[:, s], " (as in a typical won deal) would raise the score from ", before_text,
                            " to ", after_text)
        flat = np.where(rises[:, s], np.where(flat == "", line, flat + "; " + line), flat)
        parts.append((rises[:, s], join_strings('{"text": ', json_strings(line), ', "group": ',
                                                json_strings(titles[picks[:, s]]), ', "from": ', before_text,
                                                ', "to": ', after_text, "}")))
    return flat, json_arrays(parts, n)


def checklist(rows: pd.DataFrame, specs: list[FeatureSpec]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """The qualification framework's criteria, column-wise: key, label, each lead's status and the
    one-line reason with the value (None where there is none)."""
    criteria = [(s.name, s.label.split(": ", 1)[-1]) for s in specs if s.name.startswith("fw_")]
    criteria += [(c, c[3:].replace("_", " ").capitalize()) for c in rows.columns
                 if c.startswith("fw_") and not c.endswith("_reason") and c not in {n for n, _ in criteria}]
    columns = []
    for name, label in criteria:
        if name not in rows.columns:
            continue
        reason = rows.get(f"{name}_reason")
        status = rows[name].astype(str).to_numpy(dtype=object)
        why = np.full(len(rows), None, dtype=object) if reason is None else \
            reason.astype(object).where(reason.notna(), None).to_numpy(dtype=object)
        columns.append((name[3:], label, status, why))
    return columns


def checklist_json(columns: list[tuple[str, str, np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Per lead, the checklist as a JSON array of {criterion, label, status, reason}."""
    parts = [(np.ones(n, dtype=bool),
              join_strings(f'{{"criterion": {json.dumps(key)}, "label": {json.dumps(label)}, "status": ',
                           json_strings(status), ', "reason": ', json_strings(why), "}"))
             for key, label, status, why in columns]
    return json_arrays(parts, n)


def next_steps(score: np.ndarray, points: np.ndarray, n_criteria: int,
               routing: RoutingParams) -> tuple[np.ndarray, np.ndarray]:
    """sales_ready (SQL), nurture (MQL) or disqualify per lead, and the rule that fired, in plain words."""
    score = np.asarray(score, dtype=np.int64)
    met = np.nan_to_num(np.asarray(points, dtype=float), nan=0.0).astype(np.int64)
    s, m = score.astype(str).astype(object), met.astype(str).astype(object)
    ready = (score >= routing.sales_ready_min_score) & (met >= routing.sales_ready_min_criteria)
    drop = ~ready & (score < routing.disqualify_below_score)
    step = np.where(ready, "sales_ready", np.where(drop, "disqualify", "nurture")).astype(object)
    rule = np.where(
        ready, join_strings("score ", s, f" >= {routing.sales_ready_min_score} and ", m,
                            f" of {n_criteria} qualification criteria met (>= {routing.sales_ready_min_criteria})"),
        np.where(drop, join_strings("score ", s, f" < {routing.disqualify_below_score}"),
                 join_strings(f"not sales-ready (needs score >= {routing.sales_ready_min_score} and "
                              f">= {routing.sales_ready_min_criteria} criteria met; has ", s, " and ", m,
                              f") and not below {routing.disqualify_below_score}")))
    return step, rule.astype(object)


def next_step(score: int, points: float, n_criteria: int, routing: RoutingParams) -> tuple[str, str]:
    """:func:`next_steps` for one lead."""
    step, rule = next_steps(np.array([score]), np.array([points]), n_criteria, routing)
    return str(step[0]), str(rule[0])


def score_frame(model: LoadedModel, rows: pd.DataFrame, *, params: ScoreParams, scored_at: str,
                model_status: str = "champion", detail: bool = True) -> pd.DataFrame:
    """Scores for ``rows`` (feature-matrix rows): one output row per input row, in the same order.
    The probability is calibrated; the reasons explain the model's raw log-odds (exact SHAP).
    ``detail`` adds the JSON columns (reasons, what would raise it, checklist) for Parquet. With
    ``params.explain`` off, the reason and what-would-raise columns stay empty (and SHAP is skipped)."""
    x = model.matrix(rows)
    probability = model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float)) if len(x) \
        else np.zeros(0)
    score = score_points(probability)
    groups = Groups.of(model.specs)
    if params.explain:
        phi = contributions(model, x, method=params.shap)[0]
        templates = load_templates(params.templates) if params.templates else default_templates()
        reasons_for, reasons_against = rank_reasons(x, phi, model.specs, k=params.top_reasons,
                                                    min_contribution=params.min_contribution, templates=templates,
                                                    groups=groups)
        raise_text, raise_detail = what_would_raise(model, x, phi, score, top=2,
                                                    min_contribution=params.min_contribution, templates=templates,
                                                    groups=groups)
    else:  # scores only: no SHAP, no reasons, nothing to re-score
        reasons_for = reasons_against = Ranked.empty(len(x), params.top_reasons)
        raise_text, raise_detail = np.full(len(x), "", dtype=object), np.full(len(x), "[]", dtype=object)
    checks = checklist(rows, model.specs)
    points = pd.to_numeric(rows["framework_points"], errors="coerce").to_numpy(dtype=float) \
        if "framework_points" in rows else np.full(len(rows), np.nan)
    step, rule = next_steps(score, points, len(checks), params.routing)
    out = {
        "record_id": rows["record_id"].to_numpy(),
        "probability": np.round(probability, 6),
        "score": score,
        "grade": grade(score, params.grade_bands),
        "next_step": step,
        "next_step_rule": rule,
    }
    for i in range(params.top_reasons):
        out[f"reason_for_{i + 1}"] = reasons_for.text[:, i]
    for i in range(params.top_reasons):
        out[f"reason_against_{i + 1}"] = reasons_against.text[:, i]
    out["what_would_raise"] = raise_text
    for key, _, status, why in checks:
        out[f"{key}_status"] = status
        out[f"{key}_reason"] = np.where(pd.isna(why), "", why)
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(rows)))
    as_of = pd.to_datetime(rows["as_of"], errors="coerce") if "as_of" in rows else \
        pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us]")
    frame["as_of"] = as_of.dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object)
    frame["model_version"] = model.version
    frame["registry_version"] = pd.Series(model.meta.get("registry_version"), index=frame.index, dtype="str")
    frame["model_status"] = model_status
    frame["scored_at"] = scored_at
    if detail:  # the structured detail, for the lead board and `leadscore explain` (Parquet only, not the CSV)
        frame["reasons_for"] = reasons_for.json(groups.titles)
        frame["reasons_against"] = reasons_against.json(groups.titles)
        frame["what_would_raise_detail"] = raise_detail
        frame["checklist"] = checklist_json(checks, len(rows))
    return frame


LEAD_BOARD = "lead_board.html"
DETAIL_COLUMNS = ["reasons_for", "reasons_against", "what_would_raise_detail", "checklist"]


def write_scores(scores: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    csv_path, parquet_path = out_dir / SCORES_CSV, out_dir / SCORES_PARQUET
    with atomic_path(csv_path) as tmp:
        spreadsheet_safe(scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores])).to_csv(tmp, index=False)
    with atomic_path(parquet_path) as tmp:
        scores.to_parquet(tmp, index=False)
    return csv_path, parquet_path


def scoring_model(settings: Settings, which: str | None = None) -> tuple[LoadedModel, str]:
    """The model to score with, and its status for the model_status column.

    ``which`` None: the champion ("champion"), or with no champion yet the trained model in
    ``paths.models`` ("unpromoted"). A folder with model.txt and model_meta.json: that model
    ("file"). A registry version number or alias: that version ("registry")."""
    if which is not None:
        if Path(which).is_dir():
            return load_model(Path(which)), "file"
        return _registered(settings, registry.numbered(settings, which)), "registry"
    champion = registry.aliased(settings)
    if champion is None:
        model = load_model(settings.paths.models)
        log.warning("no model has passed the gates yet (see %s): scoring with the unpromoted model %s; every "
                    "row is marked model_status=unpromoted", settings.paths.promotion, model.version)
        return model, "unpromoted"
    return _registered(settings, champion), "champion"


def _registered(settings: Settings, version: registry.Version) -> LoadedModel:
    """A registered version's model: the local files if they are its bytes, else downloaded."""
    local = load_model(settings.paths.models) if (settings.paths.models / MODEL_META_FILE).exists() else None
    if local is not None and local.meta.get("model_sha256") == version.model_sha256:
        model = local
    else:
        with tempfile.TemporaryDirectory(prefix="leadscore-model-") as tmp:
            model = load_model(registry.download(settings, version, Path(tmp)))
    model.meta["registry_version"] = version.version
    return model


def input_columns(model: LoadedModel) -> list[str]:
    """What scoring reads from a feature-matrix file: keys, the model's features, framework reasons."""
    names = [s.name for s in model.specs]
    reasons_ = [f"{n}_reason" for n in names if n.startswith("fw_")]
    return list(dict.fromkeys(["record_id", "as_of", "framework_points", *names, *reasons_]))


def check_input_columns(header: list[str], model: LoadedModel, path: Path) -> None:
    """Fail fast, naming them, if the file lacks the id or a feature the model needs."""
    missing = [c for c in ["record_id", *(s.name for s in model.specs)] if c not in header]
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise DataError(f"{path} lacks column(s) the model {model.version} needs: {shown}. Score a feature "
                        "matrix built by `leadscore features` with the params the model was trained with")


def quarantine_rows(chunk: pd.DataFrame, model: LoadedModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off rows that cannot be scored, each with its reason: no record id, or text in a
    numeric feature (a number that would otherwise silently become "missing"). ``row`` numbers
    them from 1 within ``chunk``."""
    reason = pd.Series("", index=chunk.index, dtype=object)
    ids = chunk["record_id"]
    reason[ids.isna() | (ids.astype(str).str.strip() == "")] = "missing record_id"
    for spec in model.specs:
        column = chunk[spec.name]
        if spec.kind != "numeric" or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        text = column.astype(object).where(column.notna(), None)
        parsed = pd.to_numeric(text, errors="coerce")
        bad = parsed.isna() & text.notna() & (text.astype(str).str.strip() != "") & (reason == "")
        if bad.any():
            reason[bad] = [f"{spec.name}: {str(v)[:60]!r} is not a number" for v in text[bad]]
    bad_rows = (reason != "").to_numpy()
    if not bad_rows.any():
        return chunk, pd.DataFrame(columns=["row", "record_id", "reason"])
    quarantined = pd.DataFrame({"row": np.nonzero(bad_rows)[0] + 1,
                                "record_id": ids[bad_rows].astype(object).to_numpy(),
                                "reason": reason[bad_rows].to_numpy()})
    return chunk[~bad_rows], quarantined


def score_chunk(model: LoadedModel, chunk: pd.DataFrame, *, params: ScoreParams, scored_at: str, model_status: str,
                detail: bool) -> tuple[pd.DataFrame, pd.DataFrame, DriftCounter | None]:
    """One chunk of a batch: its scores, its quarantined rows (``row`` counts from 1 within it)
    and its drift counts. The local and the Dask engine both score through this function."""
    good, quarantined = quarantine_rows(chunk, model)
    scores = score_frame(model, good, params=params, scored_at=scored_at, model_status=model_status, detail=detail)
    reference = model.meta.get("drift_reference")
    counter = None
    if reference:
        counter = DriftCounter(reference)
        counter.add(good, scores["score"].to_numpy())
    return scores, quarantined, counter


def drift_report(counter: DriftCounter | None, params: DriftParams) -> dict[str, Any] | None:
    """The PSI report, logged as a warning naming drifted features; None for a model without reference."""
    if counter is None:
        return None
    report = counter.report(watch=params.watch, act=params.act)
    warning = drift_warning(report)
    if warning:
        log.warning("%s", warning)
    return report


def now_utc() -> str:
    """The scored_at stamp: now, in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BatchSummary:
    """What a `leadscore score --input` run did."""

    output: Path
    rows_in: int
    rows_out: int
    quarantined: int
    quarantine_path: Path | None
    drift_path: Path | None
    model_version: str
    model_status: str


def side_path(output: Path, suffix: str) -> Path:
    """``scores.csv`` -> ``scores.<suffix>``: where a batch's quarantine and drift files go."""
    name = output.name.removesuffix(".gz")
    return output.with_name(name.rsplit(".", 1)[0] + suffix)


class Batch:
    """The bookkeeping of one `score --input` run, shared by the local and the Dask engine: the
    model, the reader, quarantined rows numbered across chunks, merged drift counts, rows in."""

    def __init__(self, settings: Settings, *, input_path: Path, output_path: Path, model_name: str | None,
                 chunk_rows: int | None, scored_at: str | None) -> None:
        self.settings, self.input_path, self.output_path = settings, input_path, output_path
        self.model, self.status = scoring_model(settings, model_name)
        self.detail = table_format(output_path) == "parquet"  # an unknown output type fails before any work
        self.reader = ChunkReader(input_path, chunk_rows=chunk_rows or settings.score.chunk_rows,
                                  columns=input_columns(self.model))
        check_input_columns(self.reader.header, self.model, input_path)
        self.scored_at = scored_at or now_utc()
        self.rows_in = 0
        self.quarantined: list[pd.DataFrame] = []
        self.counter: DriftCounter | None = None

    def score(self, chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, DriftCounter | None]:
        """:func:`score_chunk` with this batch's model and settings."""
        return score_chunk(self.model, chunk, params=self.settings.score, scored_at=self.scored_at,
                           model_status=self.status, detail=self.detail)

    def add(self, writer: ChunkWriter, scores: pd.DataFrame, bad: pd.DataFrame, counter: DriftCounter | None,
            rows: int) -> None:
        """A scored chunk of ``rows`` input rows, in input order (``bad`` numbered from 1 within it)."""
        writer.write(scores)
        self.quarantined.append(bad.assign(row=bad["row"] + self.rows_in))
        self.rows_in += rows
        if counter is not None:
            self.counter = counter if self.counter is None else self.counter.merge(counter)

    def close(self, writer: ChunkWriter) -> None:
        """After the last chunk: CSV lines the parser could not split are quarantined too, and an
        input with no rows still gets an output file with the header."""
        malformed = self.reader.malformed
        if malformed:
            self.quarantined.append(pd.DataFrame({
                "row": [None if line is None else line - 1 for line, _ in malformed],
                "record_id": [text.split(",", 1)[0][:60] for _, text in malformed],
                "reason": list(malformed.values())}))
            self.rows_in += len(malformed)
        if self.rows_in == len(malformed):
            log.warning("%s has no rows: writing an empty %s", self.input_path, self.output_path.name)
            scores, _, _ = self.score(pd.DataFrame(columns=input_columns(self.model)))
            writer.write(scores)

    def summary(self, rows_out: int) -> BatchSummary:
        return finish_batch(self.settings, model=self.model, status=self.status, output_path=self.output_path,
                            rows_in=self.rows_in, rows_out=rows_out, quarantined=self.quarantined,
                            counter=self.counter)


def score_file(settings: Settings, *, input_path: Path, output_path: Path, model_name: str | None = None,
               chunk_rows: int | None = None, progress: bool = False, scored_at: str | None = None) -> BatchSummary:
    """Score every row of a feature-matrix file (CSV or Parquet), ``chunk_rows`` at a time, into
    ``output_path`` (CSV or Parquet, written atomically), in input order. Rows that cannot be scored
    go to ``<output>.quarantine.csv`` with their reason; the drift report to ``<output>.drift.json``."""
    batch = Batch(settings, input_path=input_path, output_path=output_path, model_name=model_name,
                  chunk_rows=chunk_rows, scored_at=scored_at)
    with ChunkWriter(output_path) as writer, progress_bar(batch.reader.total_rows, enabled=progress) as advance:
        for chunk in batch.reader:
            batch.add(writer, *batch.score(chunk), rows=len(chunk))
            advance(len(chunk))
        batch.close(writer)
    return batch.summary(writer.rows)


def finish_batch(settings: Settings, *, model: LoadedModel, status: str, output_path: Path, rows_in: int,
                 rows_out: int, quarantined: list[pd.DataFrame], counter: DriftCounter | None) -> BatchSummary:
    """Write the quarantine and drift files next to the output; check rows in = out + quarantined."""
    bad = pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame()
    quarantine_path = side_path(output_path, ".quarantine.csv")
    if len(bad):
        with atomic_path(quarantine_path) as tmp:
            spreadsheet_safe(bad).to_csv(tmp, index=False)
        log.warning("%d row(s) could not be scored; each is in %s with its reason", len(bad), quarantine_path)
    else:
        quarantine_path.unlink(missing_ok=True)  # an old run's quarantine must not look like this run's
    if rows_out + len(bad) != rows_in:
        raise RuntimeError(f"rows in ({rows_in}) != rows scored ({rows_out}) + quarantined ({len(bad)})")
    report = drift_report(counter, settings.score.drift)
    drift_path = side_path(output_path, ".drift.json") if report is not None else None
    if drift_path is not None:
        write_json(drift_path, report)
    log.info("scored %d of %d rows with the %s model %s -> %s", rows_out, rows_in, status, model.version,
             output_path)
    return BatchSummary(output=output_path, rows_in=rows_in, rows_out=rows_out, quarantined=len(bad),
                        quarantine_path=quarantine_path if len(bad) else None, drift_path=drift_path,
                        model_version=model.version, model_status=status)


@contextmanager
def progress_bar(total: int | None, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rows and rows/s progress bar on stderr when ``enabled`` (a terminal); a no-op otherwise."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} rows/s" if task.speed else "")

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), RowsPerSecond(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("score", total=total)
        yield lambda n: bar.advance(task, n)


DRIFT_REPORT = "drift.json"


def run(settings: Settings) -> pd.DataFrame:
    """The score stage: every open deal in the feature matrix, scored with the champion, sorted by
    score, plus the lead board and the drift report (``drift.json``) in ``paths.scores``."""
    model, status = scoring_model(settings)
    features = read_feature_set(settings.paths.features)
    check_features_match(model, features)
    open_rows = features.matrix[features.matrix["outcome"] == OUTCOME_OPEN]
    scored_at = now_utc()
    scores, bad, counter = score_chunk(model, open_rows, params=settings.score, scored_at=scored_at,
                                       model_status=status, detail=True)
    if len(bad):  # the features stage writes clean rows: this is a bug upstream, not bad input
        raise ModelError(f"{len(bad)} row(s) of {settings.paths.features} cannot be scored, e.g. "
                         f"{bad['reason'].iloc[0]}; rebuild the features")
    scores = scores.sort_values(["score", "record_id"], ascending=[False, True], kind="stable")
    csv_path, _ = write_scores(scores, settings.paths.scores)
    report = drift_report(counter, settings.score.drift)
    if report is not None:
        write_json(settings.paths.scores / DRIFT_REPORT, report)
    shown = scores.head(settings.score.board_max_leads)  # sorted by score: the board lists the best leads
    notes = [f"Model {model.version} ({status}); grades: A >= {settings.score.grade_bands[0]:g}, "
             f"B >= {settings.score.grade_bands[1]:g}, C >= {settings.score.grade_bands[2]:g}"]
    if len(shown) < len(scores):
        notes.append(f"Showing the {len(shown):,} highest-scored of {len(scores):,} leads (score.board_max_leads); "
                     f"every lead is in {csv_path.name}.")
    board = render_board(shown.assign(what_would_raise=shown["what_would_raise_detail"]),
                         settings.paths.scores / LEAD_BOARD, title="Lead board", notes=notes, drift=report)
    log.info("lead board: %s", board)
    counts = scores["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    log.info("scored %d open deals with the %s model %s (registry version %s) -> %s (grades %s)", len(scores), status,
             model.version, model.meta.get("registry_version", "none"), csv_path,
             ", ".join(f"{g}: {n}" for g, n in counts.items()))
    return scores
