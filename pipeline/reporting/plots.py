"""PNG plots of the evaluate stage's curves, backtest and SHAP values: in ``paths.figures`` (which
``dvc plots show`` renders without the network) and the MLflow run.

Pure functions of figures already computed: nothing here calculates a metric. Plots are drawn on
``matplotlib.figure.Figure`` objects, never through pyplot, so they render headless and in threads
and leave no open figure behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pipeline.io.files import atomic_path

log = logging.getLogger(__name__)

DPI = 100
FIGSIZE = (6.0, 4.5)
PNG_METADATA: dict[str, Any] = {"Software": None}  # no matplotlib version stamp, so an upgrade alone changes no bytes
SHAP_TITLE = "What drives the score (holdout, log-odds)"
SHAP_WIDTH, SHAP_ROW_HEIGHT, SHAP_MARGIN = 8.0, 0.4, 1.6
MODEL_COLOUR, BEFORE_COLOUR, REFERENCE_COLOUR = "tab:blue", "tab:orange", "grey"
STAGE_ORDER = ("before", "after")  # calibration stages: raw booster scores, then the calibrated ones


@dataclass(frozen=True)
class _Curve:
    x: str
    y: str
    title: str
    xlabel: str
    ylabel: str
    reference: str | None  # legend label of the y = x line, or None for no line


CURVES = {
    "roc": _Curve("fpr", "tpr", "ROC curve (holdout)", "False positive rate (lost deals flagged)",
                  "True positive rate (won deals found)", "random ranking"),
    "precision_recall": _Curve("recall", "precision", "Precision-recall (holdout)", "Recall (share of won found)",
                               "Precision (win rate of those flagged)", None),
    "gains": _Curve("share_of_deals", "share_of_won", "Cumulative gains (holdout)",
                    "Share of deals worked, best score first", "Share of won deals captured", "random order"),
    "calibration": _Curve("mean_predicted", "observed_rate", "Calibration (holdout)", "Mean predicted win probability",
                          "Observed win rate", "perfectly calibrated"),
}


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA)
    return path


def _draw_calibration(ax: Axes, frame: pd.DataFrame) -> None:
    """One line per stage ('before'/'after' calibration, else just the model); marker area follows the bin's deals."""
    if "stage" in frame.columns:
        stages = sorted(frame["stage"].dropna().unique(),
                        key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), str(s)))
        series = [(str(s), frame[frame["stage"] == s]) for s in stages]
    else:
        series = [("model", frame)]
    biggest = float(frame["count"].max()) if "count" in frame.columns and len(frame) else 0.0
    for label, part in series:
        part = part.sort_values("mean_predicted")
        colour = BEFORE_COLOUR if label == "before" else MODEL_COLOUR if label in ("after", "model") else None
        line = ax.plot(part["mean_predicted"], part["observed_rate"], color=colour, linewidth=1.5,
                       label=f"{label} calibration" if label in STAGE_ORDER else label)[0]
        if biggest > 0:
            ax.scatter(part["mean_predicted"], part["observed_rate"], s=15 + 150 * part["count"] / biggest,
                       color=line.get_color(), alpha=0.7, zorder=3)
    if biggest > 0:
        ax.text(0.98, 0.02, "marker area: deals in the bin", transform=ax.transAxes, ha="right", fontsize=8)


def _plot_curve(name: str, frame: pd.DataFrame, path: Path) -> Path:
    curve = CURVES[name]
    missing = [c for c in (curve.x, curve.y) if c not in frame.columns]
    if missing:
        raise ValueError(f"curve {name!r} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, frame))}")
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if curve.reference:
        ax.plot([0, 1], [0, 1], linestyle="--", linewidth=1, color=REFERENCE_COLOUR, label=curve.reference)
    if name == "calibration":
        _draw_calibration(ax, frame)
    else:
        ax.plot(frame[curve.x], frame[curve.y], color=MODEL_COLOUR, linewidth=2, label="model")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=curve.xlabel, ylabel=curve.ylabel, title=curve.title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if name in ("roc", "gains") else "best", fontsize=9)
    return _save(fig, path)


def _plot_backtest(frame: pd.DataFrame, path: Path) -> Path:
    """ROC AUC and calibration error per window (left), lift in the top 10 % (right)."""
    fig = Figure(figsize=(FIGSIZE[0] * 1.6, FIGSIZE[1]), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2)
    labels = [f"{w}\n{to}" for w, to in zip(frame["window"], frame["test_to"], strict=True)]
    left.plot(labels, frame["roc_auc"], marker="o", color=MODEL_COLOUR, label="ROC AUC")
    left.plot(labels, frame["ece"], marker="s", color=BEFORE_COLOUR, label="calibration error (ECE)")
    left.axhline(0.5, linestyle="--", linewidth=1, color=REFERENCE_COLOUR, label="chance (AUC)")
    left.set(ylim=(0, 1), xlabel="window (last decision date)", title="Backtest: ROC AUC and ECE per window")
    right.plot(labels, frame["lift_top_10pct"], marker="o", color=MODEL_COLOUR, label="lift, top 10 %")
    right.axhline(1.0, linestyle="--", linewidth=1, color=REFERENCE_COLOUR, label="no lift")
    right.set(ylim=(0, None), xlabel="window (last decision date)", title="Backtest: lift in the top 10 %")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        ax.tick_params(axis="x", labelsize=8)
    return _save(fig, path)


def render_plots(curves: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """One PNG per known curve in ``curves``, named ``<name>.png`` in ``out_dir``; the written paths, by name.

    Known curves and their columns: 'roc' (fpr, tpr), 'precision_recall' (recall, precision), 'gains'
    (share_of_deals, share_of_won), 'calibration' (mean_predicted, observed_rate, optional count and stage
    'before'/'after'), 'backtest' (window, test_to, roc_auc, ece, lift_top_10pct). Other names are
    skipped, so the evaluate stage can pass all its curves.
    """
    written = []
    for name in sorted(curves):
        if name == "backtest":
            if len(curves[name]):
                written.append(_plot_backtest(curves[name], out_dir / "backtest.png"))
            continue
        if name not in CURVES:
            log.debug("no plot for curve %r", name)
            continue
        written.append(_plot_curve(name, curves[name], out_dir / f"{name}.png"))
    return written


def _colour_values(features: pd.DataFrame) -> np.ndarray:
    """Features as floats for the beeswarm's colour scale: categoricals by category code, missing as NaN."""
    columns = []
    for name in features.columns:
        col = features[name]
        if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
            columns.append(col.to_numpy(dtype="float64", na_value=np.nan))
            continue
        categorical = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
        codes = categorical.cat.codes.to_numpy(dtype="float64")
        codes[codes < 0] = np.nan
        columns.append(codes)
    return np.column_stack(columns) if columns else np.empty((len(features), 0))


def render_shap_summary(contributions: np.ndarray, features: pd.DataFrame, path: Path, *,
                        max_display: int = 20) -> Path:
    """A SHAP beeswarm of ``contributions`` (holdout rows x features, log-odds, no base-value column).

    ``features`` holds the same rows and columns in the same order; its values colour the dots.
    """
    import shap  # here, not at module level: importing shap compiles numba code, seconds the other plots don't need

    values = np.asarray(contributions, dtype="float64")
    if values.shape != features.shape:
        raise ValueError(f"contributions are {values.shape} but features are {features.shape}; pass the "
                         "contributions without the base-value column, for the same rows and columns")
    explanation = shap.Explanation(values=values, data=_colour_values(features),
                                   feature_names=[str(c) for c in features.columns])
    rows = min(max_display, values.shape[1]) + (values.shape[1] > max_display)  # shap adds a "sum of others" row
    fig = Figure(figsize=(SHAP_WIDTH, SHAP_ROW_HEIGHT * rows + SHAP_MARGIN), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    # The beeswarm shuffles its dots with NumPy's global generator: seeded here (and put back after), so
    # the same model and holdout draw the same PNG, byte for byte (a DVC output).
    state = np.random.get_state()
    np.random.seed(0)
    try:
        shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(state)
    ax.set_title(SHAP_TITLE)
    return _save(fig, path)
