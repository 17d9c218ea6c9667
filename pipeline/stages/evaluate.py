"""The evaluate stage: the model on the newest closed deals it never saw, against baselines and the
current champion, over time (a rolling-origin backtest), and the decision whether it becomes the
champion that scoring uses.

Writes ``metrics.json`` (the headline figures, for ``dvc metrics show``), ``evaluation.json``
(every figure: intervals, baselines, paired differences, backtest windows, conversion by grade,
the training outcomes added since the last model, and who was right, the model or the reps, on
leads with rep feedback that have closed since), curve files (for ``dvc plots show``) and the
same as PNGs, ``promotion.json`` (the decision), the model card (outside DVC: it shows when and
from which commit the model was trained), and the same figures and a SHAP summary to the model's
MLflow run. A model that is no better than chance, or than a baseline, or than the champion, is
recorded but not promoted, and the stage says why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Settings
from pipeline.contracts.features import FRAMEWORK_POINTS, FeatureSet, read_feature_set
from pipeline.contracts.fields import OUTCOME_OPEN
from pipeline.contracts.files import PROVENANCE_FILE
from pipeline.contracts.model import read_provenance
from pipeline.explain.shap import Explainer
from pipeline.feedback import FeedbackStore, feedback_notes, who_was_right
from pipeline.feedback.outcomes import headline as feedback_headline
from pipeline.io.files import atomic_path, read_json, write_json
from pipeline.mlops import registry
from pipeline.mlops.promotion import decide
from pipeline.mlops.tracking import Store, log_evaluation
from pipeline.modeling.backtest import backtest, backtest_summary, backtest_table
from pipeline.modeling.grades import grade, score_points
from pipeline.modeling.metrics import Evaluation, evaluate, holdout_figures, model_verdict, verdict
from pipeline.modeling.model import check_features_match, load_model
from pipeline.modeling.split import MatrixSplit, model_columns
from pipeline.reporting.model_card import card_contents, write_model_card
from pipeline.reporting.plots import render_plots, render_shap_summary
from pipeline.scoring.routing import next_steps

log = logging.getLogger(__name__)


# The headline of `dvc metrics show` and `dvc exp show`, short enough for 120 columns (every figure,
# under its full name, is in evaluation.json): short name -> evaluation.json key.
HEADLINE = {"auc": "roc_auc", "auc_low": "roc_auc_ci_low", "lift10": "lift_top_10pct", "brier": "brier", "ece": "ece"}


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """auc, auc_low (the interval's lower bound), lift10 (lift in the top 10 %), brier, ece,
    worst_auc (the lowest backtest window's), added (closed deals since the last model), promoted."""
    out = {short: metrics[key] for short, key in HEADLINE.items() if key in metrics}
    windows = [w["roc_auc"] for w in metrics.get("backtest", []) if w.get("roc_auc") is not None]
    if windows:
        out["worst_auc"] = min(windows)
    added = (metrics.get("training_outcomes") or {}).get("added")
    if added is not None:
        out["added"] = added
    out["promoted"] = metrics.get("promoted")
    out |= feedback_headline(metrics.get("feedback"))  # nothing while no lead with rep feedback has closed
    return out


def write_evaluation(evaluation: Evaluation, *, metrics_path: Path, detail_path: Path, plots_dir: Path) -> list[Path]:
    write_json(detail_path, evaluation.metrics)
    write_json(metrics_path, headline(evaluation.metrics))
    written = [metrics_path, detail_path]
    for name, frame in evaluation.curves.items():
        path = plots_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        written.append(path)
    return written


def leakage_report(features_report: Path) -> dict[str, Any] | None:
    """What the features stage's leakage guard dropped, if its report can be read."""
    try:
        report: dict[str, Any] = read_json(features_report)
    except (OSError, ValueError):
        return None
    leakage = report.get("leakage")
    return leakage if isinstance(leakage, dict) else None


def feedback_report(settings: Settings, features: FeatureSet, test: pd.DataFrame, evaluation: Evaluation
                    ) -> dict[str, Any]:
    """Who was right on the closed deals of this export that reps gave feedback on before they closed,
    against the model's own win rate per next step and grade on the holdout. The feedback database is
    read, never created."""
    store = FeedbackStore.existing(settings.feedback, db=settings.paths.feedback_db)
    frames = store.frames() if store is not None else None
    matrix = features.matrix
    outcomes = matrix.loc[matrix["outcome"] != OUTCOME_OPEN, ["record_id", "outcome", "as_of"]]
    score = score_points(evaluation.p)
    points = test[FRAMEWORK_POINTS].to_numpy(dtype=float) if FRAMEWORK_POINTS in test else np.full(len(test), np.nan)
    step, _ = next_steps(score, points, 0, settings.score.routing)
    reference = pd.DataFrame({"next_step": step, "grade": grade(score, settings.grades.bands),
                              "won": evaluation.y.astype(bool)})
    return who_was_right(outcomes, frames, reference=reference, min_leads=settings.feedback.min_leads,
                         confidence=settings.evaluate.confidence)


def run(settings: Settings) -> Evaluation:
    paths = settings.paths
    model = load_model(paths.models)
    features = read_feature_set(paths.features)
    check_features_match(model, features)
    store = Store.of(settings.registry, source=settings.source, mlflow_db=paths.mlflow_db)
    registry.aliased(store)  # the registry reached before the holdout is scored: an unreachable one fails in seconds
    parts = MatrixSplit(features.matrix, valid_fraction=settings.split.valid_fraction,
                        test_fraction=settings.split.test_fraction, seed=settings.seed)
    test = parts.rows("test")
    # the baselines read only the features and the outcome of the training slice
    train = parts.rows("train", model_columns(features.matrix, [s.name for s in model.specs], "label"))
    evaluation = evaluate(model, test, params=settings.evaluate, seed=settings.seed,
                          grade_bands=settings.grades.bands, train=train)
    del train, parts
    metrics = evaluation.metrics
    windows = backtest(features, windows=settings.evaluate.backtest_windows, params=settings.train,
                       split=settings.split, sufficiency=settings.sufficiency, seed=settings.seed,
                       calibration_bins=settings.evaluate.calibration_bins)
    metrics["backtest"] = [w.as_dict() for w in windows]
    metrics["backtest_summary"] = backtest_summary(windows)
    log.info("%s", metrics["backtest_summary"])
    evaluation.curves["backtest"] = backtest_table(windows)
    provenance = read_provenance(paths.models / PROVENANCE_FILE, model_sha256=model.meta.model_sha256)
    if provenance is not None and provenance.outcomes is not None:
        metrics["training_outcomes"] = provenance.outcomes.model_dump(mode="json")
        log.info("trained on %s", provenance.outcomes.sentence())
    metrics["feedback"] = feedback_report(settings, features, test, evaluation)
    notes = feedback_notes(metrics["feedback"])
    for note in notes:
        log.info("rep feedback: %s", note)
    sentence = verdict(metrics, confidence=settings.evaluate.confidence)
    (log.info if metrics["better_than_chance"] else log.warning)(sentence)
    for name, b in metrics.get("baselines", {}).items():
        log.info("baseline %-20s ROC AUC %.3f, Brier %.4f", name, b["roc_auc"], b["brier"])
    promotion = decide(store, model, evaluation=evaluation, test=test, gates=settings.gates,
                       params=settings.evaluate, seed=settings.seed)
    (log.info if promotion["promoted"] else log.warning)(promotion["decision"])
    metrics["promoted"] = promotion["promoted"]
    metrics["gates"] = {g["gate"]: g["passed"] for g in promotion["gates"]}
    if "training_outcomes" in metrics:
        promotion["training_outcomes"] = metrics["training_outcomes"]
    promotion["backtest_summary"] = metrics["backtest_summary"]
    promotion["holdout"] = holdout_figures(metrics, confidence=settings.evaluate.confidence)  # the board's verdict
    written = write_evaluation(evaluation, metrics_path=paths.metrics, detail_path=paths.evaluation,
                               plots_dir=paths.plots)
    write_json(paths.promotion, promotion)
    card = write_model_card(paths.model_card, card_contents(
        model.meta, provenance=provenance, metrics=metrics, promotion=promotion,
        leakage=leakage_report(paths.features_report), feedback=metrics["feedback"], feedback_notes=notes,
        verdict=model_verdict(metrics, confidence=settings.evaluate.confidence, promoted=promotion["promoted"])))
    paths.figures.mkdir(parents=True, exist_ok=True)
    pngs = render_plots(evaluation.curves, paths.figures)
    x = model.matrix(test)
    phi, _ = Explainer(model.booster, route="auto").explain(x)
    pngs.append(render_shap_summary(phi, x, paths.figures / "shap_summary.png"))
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    for name, b in metrics.get("baselines", {}).items():
        numeric |= {f"baseline_{name}_{k}": float(v) for k, v in b.items() if isinstance(v, int | float)}
    log_evaluation(store, model_sha256=model.meta.model_sha256, metrics=numeric,
                   artifacts=[*written, paths.promotion, card, *pngs],
                   tags={"promoted": str(promotion["promoted"]).lower()})
    return evaluation
