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
from typing import Any

import numpy as np
import pandas as pd

from pipeline import registry
from pipeline.board import render_board
from pipeline.config import RoutingParams, ScoreParams, Settings
from pipeline.errors import ModelError
from pipeline.explain import Groups, Template, default_templates, load_templates, reasons, word
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
                     min_contribution: float,
                     templates: tuple[Template, ...] | list[Template]) -> list[list[dict[str, Any]]]:
    """Per lead, for its ``top`` most negative actionable factors (intent and qualification, never
    firmographics): the score it gets when that factor is set to a value typical of won deals, by
    re-scoring the modified lead (``before``: the leads' scores as they are). Listed only when the
    score would rise."""
    typical = model.meta.get("typical_won") or {}
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(x))]
    if not typical or not len(x):
        return out
    groups = Groups.of(model.specs)
    contribution = groups.sum(phi)
    candidates: dict[int, list[int]] = {}
    for i in range(len(x)):
        negative = [g for g in np.argsort(contribution[i], kind="stable")
                    if groups.actionable[g] and contribution[i, g] <= -min_contribution][:top]
        for g in negative:
            candidates.setdefault(int(g), []).append(i)
    for g, rows in candidates.items():
        members = groups.members[g]
        if any(typical.get(model.specs[j].name) is None for j in members):
            continue
        changed = x.iloc[rows].copy()
        for j in members:
            spec = model.specs[j]
            if spec.kind == "categorical":
                changed[spec.name] = pd.Categorical([typical[spec.name]] * len(rows),
                                                    categories=changed[spec.name].cat.categories)
            else:
                changed[spec.name] = float(typical[spec.name])
        after = score_of(model, changed)
        for r, new in zip(rows, after, strict=True):
            if new > before[r]:
                lead = members[int(np.argmax(np.abs(phi[r, members])))]
                like = word(model.specs[lead], typical[model.specs[lead].name], group=groups.titles[g],
                            templates=templates)
                out[r].append({"text": f"{like} (as in a typical won deal) would raise the score from {before[r]} "
                                       f"to {new}",
                               "group": groups.titles[g], "from": int(before[r]), "to": int(new)})
    for items in out:
        items.sort(key=lambda item: item["from"] - item["to"])
    return out


def checklist(rows: pd.DataFrame, specs: list[FeatureSpec]) -> list[list[dict[str, Any]]]:
    """Per lead, the qualification framework's criteria: status and the one-line reason with the value."""
    criteria = [(s.name, s.label.split(": ", 1)[-1]) for s in specs if s.name.startswith("fw_")]
    criteria += [(c, c[3:].replace("_", " ").capitalize()) for c in rows.columns
                 if c.startswith("fw_") and not c.endswith("_reason") and c not in {n for n, _ in criteria}]
    columns = []
    for name, label in criteria:
        if name not in rows.columns:
            continue
        reason = rows.get(f"{name}_reason")
        columns.append((name[3:], label, rows[name].astype(str).tolist(),
                        [None] * len(rows) if reason is None else [None if pd.isna(r) else str(r) for r in reason]))
    return [[{"criterion": key, "label": label, "status": status[i], "reason": reason[i]}
             for key, label, status, reason in columns] for i in range(len(rows))]


def next_step(score: int, points: float, n_criteria: int, routing: RoutingParams) -> tuple[str, str]:
    """sales_ready (SQL), nurture (MQL) or disqualify, and the rule that fired, in plain words."""
    met = 0 if np.isnan(points) else int(points)
    if score >= routing.sales_ready_min_score and met >= routing.sales_ready_min_criteria:
        return "sales_ready", (f"score {score} >= {routing.sales_ready_min_score} and {met} of {n_criteria} "
                               f"qualification criteria met (>= {routing.sales_ready_min_criteria})")
    if score < routing.disqualify_below_score:
        return "disqualify", f"score {score} < {routing.disqualify_below_score}"
    return "nurture", (f"not sales-ready (needs score >= {routing.sales_ready_min_score} and "
                       f">= {routing.sales_ready_min_criteria} criteria met; has {score} and {met}) "
                       f"and not below {routing.disqualify_below_score}")


def score_frame(model: LoadedModel, rows: pd.DataFrame, *, params: ScoreParams, scored_at: str,
                model_status: str = "champion") -> pd.DataFrame:
    """Scores for ``rows`` (feature-matrix rows): one output row per input row, in the same order.
    The probability is calibrated; the reasons explain the model's raw log-odds (exact SHAP)."""
    x = model.matrix(rows)
    probability = model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float))
    phi, _ = contributions(model, x)
    score = np.rint(probability * 100).astype(int)
    templates = load_templates(params.templates) if params.templates else default_templates()
    reasons_for, reasons_against = reasons(x, phi, model.specs, k=params.top_reasons,
                                           min_contribution=params.min_contribution, templates=templates)
    raise_by = what_would_raise(model, x, phi, score, top=2, min_contribution=params.min_contribution,
                                templates=templates)
    checks = checklist(rows, model.specs)
    points = pd.to_numeric(rows["framework_points"], errors="coerce").to_numpy(dtype=float) \
        if "framework_points" in rows else np.full(len(rows), np.nan)
    steps = [next_step(int(s), p, len(c), params.routing) for s, p, c in zip(score, points, checks, strict=True)]
    out = pd.DataFrame({
        "record_id": rows["record_id"].to_numpy(),
        "probability": np.round(probability, 6),
        "score": score,
        "grade": grade(score, params.grade_bands),
        "next_step": [s for s, _ in steps],
        "next_step_rule": [r for _, r in steps],
    })
    for i in range(params.top_reasons):
        out[f"reason_for_{i + 1}"] = [r[i]["text"] if i < len(r) else "" for r in reasons_for]
    for i in range(params.top_reasons):
        out[f"reason_against_{i + 1}"] = [r[i]["text"] if i < len(r) else "" for r in reasons_against]
    out["what_would_raise"] = ["; ".join(item["text"] for item in r) for r in raise_by]
    for item in (checks[0] if checks else []):
        for part in ("status", "reason"):
            out[f"{item['criterion']}_{part}"] = [
                next((c[part] or "" for c in row if c["criterion"] == item["criterion"]), "") for row in checks]
    out["as_of"] = pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()
    out["model_version"] = model.version
    out["registry_version"] = pd.Series(model.meta.get("registry_version"), index=out.index, dtype="str")
    out["model_status"] = model_status
    out["scored_at"] = scored_at
    # The structured detail, for the lead board and `leadscore explain` (Parquet only, not the CSV).
    out["reasons_for"] = [json.dumps(r) for r in reasons_for]
    out["reasons_against"] = [json.dumps(r) for r in reasons_against]
    out["what_would_raise_detail"] = [json.dumps(r) for r in raise_by]
    out["checklist"] = [json.dumps(c) for c in checks]
    return out


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
