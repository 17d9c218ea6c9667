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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import registry
from pipeline.board import render_board
from pipeline.config import RoutingParams, ScoreParams, Settings
from pipeline.errors import ModelError
from pipeline.explain import (
    Groups,
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
from pipeline.io import atomic_path
from pipeline.model import LoadedModel, check_features_match, load_model
from pipeline.schema import MODEL_META_FILE, OUTCOME_OPEN, SCORES_CSV, SCORES_PARQUET

log = logging.getLogger(__name__)

ADDITIVITY_TOLERANCE = 1e-6
GRADES = ("A", "B", "C", "D")


def grade(scores: np.ndarray, bands: list[float]) -> np.ndarray:
    """A for score >= bands[0], B for >= bands[1], C for >= bands[2], else D."""
    index = np.searchsorted(-np.asarray(bands, dtype=float), -scores.astype(float), side="left")
    return np.array(GRADES, dtype=object)[index]


def contributions(model: LoadedModel, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP values per feature and the base value, in log-odds, checked for additivity."""
    raw = np.asarray(model.booster.predict(x, raw_score=True), dtype=float)
    contrib = np.asarray(model.booster.predict(x, pred_contrib=True), dtype=float)
    phi, base = contrib[:, :-1], contrib[:, -1]
    gap = np.abs(phi.sum(axis=1) + base - raw)
    if len(gap) and gap.max() > ADDITIVITY_TOLERANCE:
        worst = int(gap.argmax())
        raise ModelError(f"SHAP contributions do not add up to the model score for row {worst} "
                         f"(off by {gap[worst]:.2e}); refusing to write explanations that are not exact")
    return phi, base


def score_of(model: LoadedModel, x: pd.DataFrame) -> np.ndarray:
    """Scores 0-100 of model-matrix rows: calibrated probability x 100, rounded."""
    return np.rint(model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float)) * 100).astype(int)


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
    # Ties in the rise keep the order in which groups first come up, lead by lead.
    first_seen = pd.unique(picks[valid].ravel())
    rank = np.full(len(groups.members), len(first_seen), dtype=np.int64)
    rank[first_seen] = np.arange(len(first_seen))
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
    order = np.argsort(np.where(rises, -after * (len(rank) + 1) + rank[picks], np.iinfo(np.int64).max), axis=1,
                       kind="stable")
    picks, after, text, rises = (np.take_along_axis(a, order, axis=1) for a in (picks, after, text, rises))
    before_text = before.astype(str).astype(object)
    flat, parts = np.full(n, "", dtype=object), []
    titles = np.asarray(groups.titles, dtype=object)
    for s in range(picks.shape[1]):
        after_text = after[:, s].astype(str).astype(object)
        line = join_strings(text[:, s], " (as in a typical won deal) would raise the score from ", before_text, " to ",
                     after_text)
        flat = np.where(rises[:, s], np.where(flat == "", line, flat + "; " + line), flat)
        parts.append((rises[:, s], join_strings('{"text": ', json_strings(line), ', "group": ',
                                         json_strings(titles[picks[:, s]]), ', "from": ', before_text, ', "to": ',
                                         after_text, "}")))
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
    ``detail`` adds the JSON columns (reasons, what would raise it, checklist) for Parquet."""
    x = model.matrix(rows)
    probability = model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float))
    phi, _ = contributions(model, x)
    score = np.rint(probability * 100).astype(int)
    templates = load_templates(params.templates) if params.templates else default_templates()
    groups = Groups.of(model.specs)
    reasons_for, reasons_against = rank_reasons(x, phi, model.specs, k=params.top_reasons,
                                                min_contribution=params.min_contribution, templates=templates,
                                                groups=groups)
    raise_text, raise_detail = what_would_raise(model, x, phi, score, top=2, min_contribution=params.min_contribution,
                                                templates=templates, groups=groups)
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
    frame["as_of"] = pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()
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
        scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores]).to_csv(tmp, index=False)
    with atomic_path(parquet_path) as tmp:
        scores.to_parquet(tmp, index=False)
    return csv_path, parquet_path


def scoring_model(settings: Settings) -> tuple[LoadedModel, str]:
    """The champion and "champion"; with no champion yet, the trained model and "unpromoted"."""
    champion = registry.aliased(settings)
    if champion is None:
        model = load_model(settings.paths.models)
        log.warning("no model has passed the gates yet (see %s): scoring with the unpromoted model %s; every "
                    "row is marked model_status=unpromoted", settings.paths.promotion, model.version)
        return model, "unpromoted"
    local = load_model(settings.paths.models) if (settings.paths.models / MODEL_META_FILE).exists() else None
    if local is not None and local.meta.get("model_sha256") == champion.model_sha256:
        model = local
    else:
        with tempfile.TemporaryDirectory(prefix="leadscore-champion-") as tmp:
            model = load_model(registry.download(settings, champion, Path(tmp)))
    model.meta["registry_version"] = champion.version
    return model, "champion"


def run(settings: Settings) -> pd.DataFrame:
    """The score stage: every open deal in the feature matrix, scored with the champion."""
    model, status = scoring_model(settings)
    features = read_feature_set(settings.paths.features)
    check_features_match(model, features)
    open_rows = features.matrix[features.matrix["outcome"] == OUTCOME_OPEN]
    scored_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scores = score_frame(model, open_rows, params=settings.score, scored_at=scored_at, model_status=status)
    scores = scores.sort_values(["score", "record_id"], ascending=[False, True], kind="stable")
    csv_path, _ = write_scores(scores, settings.paths.scores)
    shown = scores.head(settings.score.board_max_leads)  # sorted by score: the board lists the best leads
    notes = [f"Model {model.version} ({status}); grades: A >= {settings.score.grade_bands[0]:g}, "
             f"B >= {settings.score.grade_bands[1]:g}, C >= {settings.score.grade_bands[2]:g}"]
    if len(shown) < len(scores):
        notes.append(f"Showing the {len(shown):,} highest-scored of {len(scores):,} leads (score.board_max_leads); "
                     f"every lead is in {csv_path.name}.")
    board = render_board(shown.assign(what_would_raise=shown["what_would_raise_detail"]),
                         settings.paths.scores / LEAD_BOARD, title="Lead board", notes=notes)
    log.info("lead board: %s", board)
    counts = scores["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    log.info("scored %d open deals with the %s model %s (registry version %s) -> %s (grades %s)", len(scores), status,
             model.version, model.meta.get("registry_version", "none"), csv_path,
             ", ".join(f"{g}: {n}" for g, n in counts.items()))
    return scores
