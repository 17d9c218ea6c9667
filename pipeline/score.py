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

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import registry
from pipeline.config import ScoreParams, Settings
from pipeline.errors import ModelError
from pipeline.features import read_feature_set
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


def _format_value(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def top_reasons(x: pd.DataFrame, phi: np.ndarray, *, k: int) -> list[list[str]]:
    """The ``k`` largest contributions per row, as "feature=value (+0.42)"."""
    names = list(x.columns)
    order = np.argsort(-np.abs(phi), axis=1, kind="stable")[:, :k]
    values = x.to_numpy(dtype=object)
    reasons = []
    for i, row in enumerate(order):
        reasons.append([f"{names[j]}={_format_value(values[i, j])} ({phi[i, j]:+.2f})" for j in row])
    return reasons


def score_frame(model: LoadedModel, rows: pd.DataFrame, *, params: ScoreParams, scored_at: str,
                model_status: str = "champion") -> pd.DataFrame:
    """Scores for ``rows`` (feature-matrix rows): one output row per input row, in the same order.
    The probability is calibrated; the reasons explain the model's raw log-odds (exact SHAP)."""
    x = model.matrix(rows)
    probability = model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float))
    phi, _ = contributions(model, x)
    score = np.rint(probability * 100).astype(int)
    out = pd.DataFrame({
        "record_id": rows["record_id"].to_numpy(),
        "probability": np.round(probability, 6),
        "score": score,
        "grade": grade(score, params.grade_bands),
    })
    reasons = top_reasons(x, phi, k=params.top_reasons)
    for i in range(params.top_reasons):
        out[f"reason_{i + 1}"] = [r[i] if i < len(r) else "" for r in reasons]
    out["as_of"] = pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()
    out["model_version"] = model.version
    out["registry_version"] = pd.Series(model.meta.get("registry_version"), index=out.index, dtype="str")
    out["model_status"] = model_status
    out["scored_at"] = scored_at
    return out


def write_scores(scores: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    csv_path, parquet_path = out_dir / SCORES_CSV, out_dir / SCORES_PARQUET
    with atomic_path(csv_path) as tmp:
        scores.to_csv(tmp, index=False)
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
    counts = scores["grade"].value_counts().reindex(list(GRADES), fill_value=0)
    log.info("scored %d open deals with the %s model %s (registry version %s) -> %s (grades %s)", len(scores), status,
             model.version, model.meta.get("registry_version", "none"), csv_path,
             ", ".join(f"{g}: {n}" for g, n in counts.items()))
    return scores
