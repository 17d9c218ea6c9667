"""What the evaluate stage shows a person: PNG plots for the MLflow run and a Markdown model card.

Pure functions of figures already computed: nothing here calculates a metric. Plots are drawn on
``matplotlib.figure.Figure`` objects, never through pyplot, so they render headless and in threads
and leave no open figure behind.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pipeline.io import atomic_path

log = logging.getLogger(__name__)

DPI = 100
FIGSIZE = (6.0, 4.5)
PNG_METADATA: dict[str, Any] = {"Software": None}  # no matplotlib version stamp, so an upgrade alone changes no bytes
SHAP_TITLE = "What drives the score (holdout, log-odds)"
SHAP_WIDTH, SHAP_ROW_HEIGHT, SHAP_MARGIN = 8.0, 0.4, 1.6
MODEL_COLOUR, BEFORE_COLOUR, REFERENCE_COLOUR = "tab:blue", "tab:orange", "grey"
STAGE_ORDER = ("before", "after")  # calibration stages: raw booster scores, then the calibrated ones

COMPARISON_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss")
FOUR_DECIMALS = ("auc", "brier", "log_loss")  # metric names containing these are small differences that matter
SPLITS = ("train", "valid", "test")
MAX_LIST_ITEMS = 6  # a longer list in the card is fitted parameters, not something a reader checks


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


def render_plots(curves: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """One PNG per known curve in ``curves``, named ``<name>.png`` in ``out_dir``; the written paths, by name.

    Known curves and their columns: 'roc' (fpr, tpr), 'precision_recall' (recall, precision), 'gains'
    (share_of_deals, share_of_won), 'calibration' (mean_predicted, observed_rate, optional count and stage
    'before'/'after'). Other names are skipped, so the evaluate stage can pass all its curves.
    """
    written = []
    for name in sorted(curves):
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
    shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    ax.set_title(SHAP_TITLE)
    return _save(fig, path)


def _fmt(name: str, value: Any) -> str:
    """A figure for a person: yes/no, counts with thousands separators, AUCs and losses to 4 decimals, rates to 3."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if name.startswith("lift"):
            return f"{value:.2f}x"
        return f"{value:,.{4 if any(k in name for k in FOUR_DECIMALS) else 3}f}"
    return str(value)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]], *, numeric: bool = True) -> list[str]:
    """A Markdown table; with ``numeric`` every column after the first is right-aligned."""
    align = [" --- "] + [" ---: " if numeric else " --- "] * (len(header) - 1)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _provenance(card: dict[str, Any]) -> list[str]:
    fields = (("created_at", "Created", "{}"), ("git_commit", "Git commit", "`{}`"),
              ("data_sha256", "Data sha256", "`{}`"), ("params_sha256", "Params sha256", "`{}`"))
    return [f"- {label}: " + (shown.format(card[key]) if card[key] else "not recorded")
            for key, label, shown in fields if key in card]


def _decision(card: dict[str, Any]) -> list[str]:
    if not any(k in card for k in ("promoted", "decision", "gates")):
        return []
    lines = ["## Decision", ""]
    if "promoted" in card:
        lines.append(f"**Promoted: {_fmt('promoted', card['promoted'])}.**" + (f" {card['decision']}"
                                                                              if "decision" in card else ""))
    elif "decision" in card:
        lines.append(str(card["decision"]))
    if card.get("gates"):
        rows = [[g.get("gate", ""), "passed" if g.get("passed") else "FAILED", g.get("detail", "")]
                for g in card["gates"]]
        lines += ["", *_table(["gate", "result", "detail"], rows, numeric=False)]
    return lines


def _metrics(card: dict[str, Any]) -> list[str]:
    metrics = card.get("metrics") or {}
    if not metrics:
        return []
    return ["## Holdout metrics", "", *_table(["metric", "value"], [[k, _fmt(k, v)] for k, v in metrics.items()])]


def _baselines(card: dict[str, Any]) -> list[str]:
    baselines: dict[str, dict[str, Any]] = card.get("baselines") or {}
    if not baselines:
        return []
    models = {f"model ({card['model_version']})": card.get("metrics") or {}, **baselines}
    columns = [m for m in COMPARISON_METRICS if any(m in figures for figures in models.values())]
    rows = [[name, *(_fmt(m, figures.get(m)) for m in columns)] for name, figures in models.items()]
    return ["## Model vs baselines (holdout)", "", *_table(["model", *columns], rows)]


def _grades(card: dict[str, Any]) -> list[str]:
    grades: dict[str, dict[str, Any]] = card.get("conversion_by_grade") or {}
    if not grades:
        return []
    rows = [[g, _fmt("deals", v.get("deals")), _fmt("won", v.get("won")), _fmt("rate", v.get("rate"))]
            for g, v in grades.items()]
    return ["## Conversion by grade (holdout)", "", *_table(["grade", "deals", "won", "win rate"], rows)]


def _bullets(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    """Nested settings as ``- a.b: value`` bullets; a long list (isotonic breakpoints) only by its length."""
    lines = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += _bullets(value, f"{name}.")
        elif isinstance(value, list | tuple) and len(value) > MAX_LIST_ITEMS:
            lines.append(f"- {name}: {len(value):,} values (not shown)")
        elif isinstance(value, list | tuple):
            lines.append(f"- {name}: {', '.join(_fmt(name, v) for v in value)}")
        else:
            lines.append(f"- {name}: {_fmt(name, value)}")
    return lines


def _calibration(card: dict[str, Any]) -> list[str]:
    calibration: dict[str, Any] = card.get("calibration") or {}
    return ["## Calibration", "", *_bullets(calibration)] if calibration else []


def _data_window(card: dict[str, Any]) -> list[str]:
    window: dict[str, Any] = card.get("data_window") or {}
    splits = sorted((k for k, v in window.items() if isinstance(v, dict)),
                    key=lambda k: (SPLITS.index(k) if k in SPLITS else len(SPLITS), k))
    if not splits and "split_method" not in window:
        return []
    lines = ["## Data", ""]
    if "split_method" in window:
        lines += [f"Split: {window['split_method']}.", ""]
    rows = [[s, _fmt("rows", window[s].get("rows")), _fmt("won", window[s].get("won")),
             window[s].get("as_of_from", "—"), window[s].get("as_of_to", "—")] for s in splits]
    return lines + _table(["split", "rows", "won", "as of from", "as of to"], rows) if rows else lines[:-1]


def _features(card: dict[str, Any]) -> list[str]:
    used: list[dict[str, Any]] = card.get("features_used") or []
    dropped: dict[str, float] = card.get("features_dropped") or {}
    if not used and not dropped:
        return []
    lines = ["## Features"]
    if used:
        rows = [[f.get("name", ""), f.get("label", ""), f.get("role", "")] for f in used]
        lines += ["", f"{len(used):,} features used:", "", *_table(["feature", "label", "role"], rows, numeric=False)]
    if dropped:
        rows = [[name, _fmt("auc", auc)] for name, auc in sorted(dropped.items(), key=lambda kv: -kv[1])]
        lines += ["", "Dropped by the leakage guard (each alone separated won from lost too well to be known "
                  "before the outcome):", "", *_table(["feature", "AUC alone"], rows)]
    return lines


def _limits(card: dict[str, Any]) -> list[str]:
    limits: list[str] = card.get("limits") or []
    return ["## Known limits", "", *(f"- {limit}" for limit in limits)] if limits else []


SECTIONS = (_decision, _metrics, _baselines, _grades, _calibration, _data_window, _features, _limits)
KNOWN_KEYS = {"model_version", "created_at", "git_commit", "data_sha256", "params_sha256", "data_window",
              "features_used", "features_dropped", "metrics", "baselines", "conversion_by_grade", "calibration",
              "gates", "promoted", "decision", "limits"}


def render_model_card(card: dict[str, Any]) -> str:
    """The Markdown of a model card; a section whose key is absent is left out."""
    if not card.get("model_version"):
        raise ValueError("a model card needs a model_version")
    unknown = sorted(set(card) - KNOWN_KEYS)
    if unknown:
        log.warning("model card: ignoring unknown key(s) %s", ", ".join(unknown))
    blocks = [[f"# Model card: {card['model_version']}"], _provenance(card), *(section(card) for section in SECTIONS)]
    return "\n\n".join("\n".join(block) for block in blocks if block) + "\n"


def write_model_card(path: Path, card: dict[str, Any]) -> Path:
    """Write ``card`` (plain figures already computed by train and evaluate) as Markdown at ``path``, atomically."""
    text = render_model_card(card)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
