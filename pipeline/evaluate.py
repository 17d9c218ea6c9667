"""The evaluate stage: the model on the newest closed deals it never saw, against baselines and
the current champion, and the decision whether it becomes the champion that scoring uses.

Writes ``metrics.json`` (for ``dvc metrics show``: the model's figures, every baseline's, the
gates), curve files (for ``dvc plots show``), ``promotion.json`` (the decision), ``model_card.md``,
and the same figures, PNG plots and a SHAP summary to the model's MLflow run. A model that is no
better than chance, or than a baseline, or than the champion, is recorded but not promoted, and
the stage says why in plain words.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline import registry
from pipeline.baselines import baseline_scores
from pipeline.calibration import expected_calibration_error, reliability_curve, score_points
from pipeline.config import EvaluateParams, GatesParams, Settings
from pipeline.errors import ModelError
from pipeline.features import FeatureSet, read_feature_set
from pipeline.io import atomic_path, read_json, write_json
from pipeline.model import LoadedModel, check_features_match, load_model
from pipeline.report import render_plots, render_shap_summary, write_model_card
from pipeline.score import contributions, grade
from pipeline.split import split_rows
from pipeline.tracking import log_evaluation

log = logging.getLogger(__name__)

CURVE_POINTS = 101


def holdout(features: FeatureSet, *, valid_fraction: float, test_fraction: float, seed: int) -> pd.DataFrame:
    """The test slice: the same closed records (the newest, when there are dates) that training held out."""
    return slices(features, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)["test"]


def slices(features: FeatureSet, *, valid_fraction: float, test_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """train / valid / test: the closed records split exactly as the train stage split them."""
    labeled = features.matrix[features.matrix["label"].notna()]
    split, _ = split_rows(labeled, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    return {name: labeled[split == name] for name in ("train", "valid", "test")}


def bootstrap_auc(y: np.ndarray, p: np.ndarray, *, rounds: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval for the ROC AUC (resampling deals with replacement)."""
    if rounds == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], p[idx]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float) -> tuple[float, float]:
    """(lift, capture rate) in the top ``fraction`` of deals by score."""
    k = max(1, round(len(y) * fraction))
    top = np.argsort(-p, kind="stable")[:k]
    base = y.mean()
    return float(y[top].mean() / base), float(y[top].sum() / y.sum())


def _curves(y: np.ndarray, p: np.ndarray) -> dict[str, pd.DataFrame]:
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    grid = np.linspace(0, 1, CURVE_POINTS)
    order = np.argsort(-p, kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
    share = np.arange(len(y) + 1) / len(y)
    return {
        "roc": pd.DataFrame({"fpr": grid, "tpr": np.interp(grid, fpr, tpr)}).round(6),
        "precision_recall": pd.DataFrame({
            "recall": grid, "precision": np.interp(grid, recall[::-1], precision[::-1])}).round(6),
        "gains": pd.DataFrame({"share_of_deals": grid, "share_of_won": np.interp(grid, share, captured)}).round(6),
    }


def figures(y: np.ndarray, p: np.ndarray, *, params: EvaluateParams) -> dict[str, float]:
    """Holdout figures of one set of scores (a model's or a baseline's)."""
    p = np.clip(p, 0.0, 1.0)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, bins=params.calibration_bins),
    }
    for fraction in params.top_fractions:
        pct = round(fraction * 100)
        out[f"lift_top_{pct}pct"], out[f"capture_top_{pct}pct"] = lift_at(y, p, fraction)
    return out


def conversion_by_grade(y: np.ndarray, p: np.ndarray, bands: list[float]) -> dict[str, dict[str, float | None]]:
    """Deals, won and conversion rate per grade, the grades cut from the score as scoring cuts them."""
    grades = grade(score_points(p), bands)
    out = {}
    for g in ("A", "B", "C", "D"):
        mask = grades == g
        n, won = int(mask.sum()), int(y[mask].sum())
        out[g] = {"deals": n, "won": won, "rate": round(won / n, 6) if n else None}
    return out


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, pd.DataFrame]   # roc, precision_recall, gains, calibration
    contributions: np.ndarray          # exact SHAP values of the holdout (log-odds), for the summary plot
    matrix: pd.DataFrame               # the model's input for the holdout rows


def evaluate(model: LoadedModel, test: pd.DataFrame, *, params: EvaluateParams, seed: int,
             grade_bands: list[float] | None = None, train: pd.DataFrame | None = None) -> Evaluation:
    """Holdout metrics and curves for ``model`` (calibrated) on the closed deals in ``test``, and for
    every baseline fitted on ``train`` (if given) on the same deals."""
    y = test["label"].to_numpy(dtype=int)
    raw = model.raw_proba(test)
    p = model.calibration.apply(raw)
    found = figures(y, p, params=params)
    auc = found["roc_auc"]
    low, high = bootstrap_auc(y, p, rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed)
    metrics: dict[str, Any] = {"roc_auc": auc, "roc_auc_ci_low": low, "roc_auc_ci_high": high,
                               **{k: v for k, v in found.items() if k != "roc_auc"}}
    metrics["ece_before_calibration"] = expected_calibration_error(y, raw, bins=params.calibration_bins)
    metrics["brier_before_calibration"] = float(brier_score_loss(y, raw))
    metrics["base_rate"] = float(y.mean())
    metrics["n_test"], metrics["n_test_won"] = len(y), int(y.sum())
    metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    metrics["better_than_chance"] = bool(low > 0.5) if params.bootstrap_rounds else bool(auc > 0.5)
    metrics["calibration"] = model.calibration.method
    metrics["conversion_by_grade"] = conversion_by_grade(y, p, grade_bands or [75.0, 50.0, 25.0])
    if train is not None:
        scores = baseline_scores(train, test, model.specs, seed=seed)
        metrics["baselines"] = {}
        for name, s in scores.items():
            b_low, b_high = bootstrap_auc(y, s, rounds=params.bootstrap_rounds, confidence=params.confidence, seed=seed)
            found = figures(y, s, params=params) | {"roc_auc_ci_low": b_low, "roc_auc_ci_high": b_high}
            metrics["baselines"][name] = {k: round(v, 6) for k, v in found.items()}
    metrics["model_version"] = model.version
    metrics["split"] = model.meta["split"]["method"]
    curves = _curves(y, p)
    before = reliability_curve(y, raw, bins=params.calibration_bins).assign(stage="before")
    after = reliability_curve(y, p, bins=params.calibration_bins).assign(stage="after")
    curves["calibration"] = pd.concat([before, after], ignore_index=True).round(6)
    x = model.matrix(test)
    phi, _ = contributions(model, x)
    return Evaluation(metrics=metrics, curves=curves, contributions=phi, matrix=x)


def verdict(metrics: dict[str, Any], *, confidence: float) -> str:
    """One plain sentence on whether the model beats chance on the holdout."""
    auc, low, high = metrics["roc_auc"], metrics["roc_auc_ci_low"], metrics["roc_auc_ci_high"]
    where = f"holdout ROC AUC {auc:.3f} ({confidence:.0%} CI {low:.3f}-{high:.3f}) on {metrics['n_test']} deals"
    if metrics["better_than_chance"]:
        return f"{where}: better than chance (base rate {metrics['base_rate']:.3f})"
    return (f"{where}: NOT better than chance. The model ranks deals no better than the base rate "
            f"({metrics['base_rate']:.3f}); do not use its scores to prioritise leads")


# ---------------------------------------------------------------- gates and promotion


def gate_decisions(metrics: dict[str, Any], *, gates: GatesParams, champion_auc: float | None,
                   champion_note: str, confidence: float) -> list[dict[str, Any]]:
    """Each gate: its name, whether it passed, and the figures behind it in plain words."""
    out = []
    low, auc = metrics["roc_auc_ci_low"], metrics["roc_auc"]
    out.append({"gate": "signal", "passed": bool(metrics["better_than_chance"]),
                "detail": f"holdout ROC AUC {auc:.3f}, {confidence:.0%} CI from {low:.3f}: "
                          + ("better than chance (0.5)" if metrics["better_than_chance"]
                             else "not significantly better than chance (0.5)")})
    baselines = metrics.get("baselines") or {}
    if gates.must_beat_baselines and baselines:
        best, best_auc = max(((n, b["roc_auc"]) for n, b in baselines.items()), key=lambda kv: kv[1])
        out.append({"gate": "baselines", "passed": auc > best_auc,
                    "detail": f"ROC AUC {auc:.3f} vs the best baseline, {best.replace('_', ' ')}, {best_auc:.3f}"})
    if champion_auc is None:
        out.append({"gate": "champion", "passed": True, "detail": champion_note})
    else:
        needed = champion_auc + gates.promote_margin
        out.append({"gate": "champion", "passed": auc >= needed,
                    "detail": f"ROC AUC {auc:.3f} vs the champion's {champion_auc:.3f} on the same holdout "
                              f"(needs at least {needed:.3f}: margin {gates.promote_margin})"})
    return out


def decide(settings: Settings, model: LoadedModel, evaluation: Evaluation, test: pd.DataFrame) -> dict[str, Any]:
    """Run the gates against the registry's champion and promote the model if it passes them all."""
    metrics = evaluation.metrics
    sha = model.meta["model_sha256"]
    challenger = registry.version_of(settings, sha)
    champion = registry.aliased(settings)
    champion_auc, note = None, "no champion yet: the first model that passes the other gates becomes it"
    if champion is not None and champion.model_sha256 == sha:
        note = f"this model is already the champion (version {champion.version})"
        challenger = champion  # the same bytes registered again by a rerun: the alias stays where it is
    elif champion is not None:
        try:
            with tempfile.TemporaryDirectory(prefix="leadscore-champion-") as tmp:
                old = load_model(registry.download(settings, champion, Path(tmp)))
            y = test["label"].to_numpy(dtype=int)
            champion_auc = float(roc_auc_score(y, old.predict_proba(test)))
        except ModelError as exc:  # e.g. trained on other features: it cannot be scored on this holdout
            note = f"the champion (version {champion.version}) cannot be scored on this holdout: {exc}"
            log.warning(note)
    gates = gate_decisions(metrics, gates=settings.gates, champion_auc=champion_auc, champion_note=note,
                           confidence=settings.evaluate.confidence)
    failed = [g for g in gates if not g["passed"]]
    if challenger is None:
        failed.append({"gate": "registered", "passed": False,
                       "detail": f"model {model.version} is not in the MLflow registry; run `leadscore train` again"})
    promoted = not failed
    if promoted and challenger is not None and (champion is None or champion.version != challenger.version):
        registry.promote(settings, challenger)
    after = registry.aliased(settings)
    if promoted:
        decision = (f"Model {model.version} (registry version {challenger.version if challenger else '?'}) is the "
                    f"champion: it passed every gate.")
    else:
        reasons = "; ".join(f"{g['gate']}: {g['detail']}" for g in failed)
        keep = f"version {after.version} stays the champion" if after else "there is no champion yet"
        decision = f"Model {model.version} is recorded but NOT promoted ({reasons}); {keep}."
    return {
        "promoted": promoted,
        "decision": decision,
        "gates": gates + [g for g in failed if g["gate"] == "registered"],
        "challenger": {"model_version": model.version, "model_sha256": sha,
                       "registry_version": challenger.version if challenger else None},
        "champion_before": champion.as_dict() if champion else None,
        "champion": after.as_dict() if after else None,
        "champion_auc_on_this_holdout": None if champion_auc is None else round(champion_auc, 6),
    }


def write_evaluation(evaluation: Evaluation, *, metrics_path: Path, plots_dir: Path) -> list[Path]:
    write_json(metrics_path, evaluation.metrics)
    written = [metrics_path]
    for name, frame in evaluation.curves.items():
        path = plots_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        written.append(path)
    return written


def model_card(model: LoadedModel, evaluation: Evaluation, promotion: dict[str, Any],
               leakage: dict[str, Any] | None) -> dict[str, Any]:
    meta, metrics = model.meta, evaluation.metrics
    split = meta["split"]
    keep = ("roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "pr_auc", "log_loss", "brier", "brier_before_calibration",
            "ece", "ece_before_calibration", "base_rate", "n_test", "n_test_won")
    limits = [
        "Trained on closed deals only: open deals that are never closed in the CRM are not represented.",
        f"The holdout is the newest {split['test']['rows']} closed deals ({split['method']} split); figures can "
        "drift as the market and the sales process change.",
        "Reasons are exact SHAP contributions of this model, not causes: they say what the score rests on.",
    ]
    if not metrics.get("better_than_chance"):
        limits.insert(0, "The model is NOT better than chance on the holdout: do not prioritise leads with it.")
    return {
        "model_version": model.version,
        "created_at": meta.get("trained_at"),
        "git_commit": meta.get("git_commit"),
        "data_sha256": meta.get("train_data_sha256"),
        "params_sha256": meta.get("params_sha256"),
        "data_window": {name: split[name] for name in ("train", "valid", "test")} | {"split_method": split["method"]},
        "features_used": [{"name": s.name, "label": s.label, "role": s.role} for s in model.specs],
        "features_dropped": (leakage or {}).get("dropped", {}),
        "metrics": {k: metrics[k] for k in keep if k in metrics} | {
            k: v for k, v in metrics.items() if k.startswith(("lift_", "capture_"))},
        "baselines": metrics.get("baselines", {}),
        "conversion_by_grade": metrics.get("conversion_by_grade", {}),
        "calibration": meta.get("calibration", {}),
        "gates": promotion["gates"],
        "promoted": promotion["promoted"],
        "decision": promotion["decision"],
        "limits": limits,
    }


def run(settings: Settings) -> Evaluation:
    """The evaluate stage: model + holdout -> metrics, plots, the gates, the registry, the model card."""
    model = load_model(settings.paths.models)
    features = read_feature_set(settings.paths.features)
    check_features_match(model, features)
    parts = slices(features, valid_fraction=settings.train.valid_fraction,
                   test_fraction=settings.train.test_fraction, seed=settings.seed)
    test = parts["test"]
    evaluation = evaluate(model, test, params=settings.evaluate, seed=settings.seed,
                          grade_bands=settings.score.grade_bands, train=parts["train"])
    sentence = verdict(evaluation.metrics, confidence=settings.evaluate.confidence)
    (log.info if evaluation.metrics["better_than_chance"] else log.warning)(sentence)
    for name, b in evaluation.metrics.get("baselines", {}).items():
        log.info("baseline %-20s ROC AUC %.3f, Brier %.4f", name, b["roc_auc"], b["brier"])
    promotion = decide(settings, model, evaluation, test)
    (log.info if promotion["promoted"] else log.warning)(promotion["decision"])
    evaluation.metrics["promoted"] = promotion["promoted"]
    evaluation.metrics["gates"] = {g["gate"]: g["passed"] for g in promotion["gates"]}
    written = write_evaluation(evaluation, metrics_path=settings.paths.metrics, plots_dir=settings.paths.plots)
    write_json(settings.paths.promotion, promotion)
    leakage = _leakage_report(settings)
    card = write_model_card(settings.paths.model_card, model_card(model, evaluation, promotion, leakage))
    with tempfile.TemporaryDirectory(prefix="leadscore-plots-") as tmp:
        pngs = render_plots(evaluation.curves, Path(tmp))
        pngs.append(render_shap_summary(evaluation.contributions, evaluation.matrix, Path(tmp) / "shap_summary.png"))
        numeric = {k: float(v) for k, v in evaluation.metrics.items() if isinstance(v, int | float)}
        for name, b in evaluation.metrics.get("baselines", {}).items():
            numeric |= {f"baseline_{name}_{k}": float(v) for k, v in b.items()}
        log_evaluation(settings, model_sha256=model.meta["model_sha256"], metrics=numeric,
                       artifacts=[*written, settings.paths.promotion, card, *pngs],
                       tags={"promoted": str(promotion["promoted"]).lower()})
    return evaluation


def _leakage_report(settings: Settings) -> dict[str, Any] | None:
    try:
        report: dict[str, Any] = read_json(settings.paths.features_report)
    except (OSError, ValueError):
        return None
    leakage = report.get("leakage")
    return leakage if isinstance(leakage, dict) else None
