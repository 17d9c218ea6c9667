"""The model card: what the model is, where it came from, its holdout figures against the baselines,
and the gate decisions, as Markdown. Pure formatting of figures already computed."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.contracts.model import ModelMeta, Provenance
from pipeline.io.files import atomic_path
from pipeline.modeling.metrics import Verdict, model_verdict
from pipeline.modeling.split import SPLITS

log = logging.getLogger(__name__)

COMPARISON_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss")
FOUR_DECIMALS = ("auc", "brier", "log_loss")  # metric names containing these are small differences that matter
MAX_LIST_ITEMS = 6  # a longer list in the card is fitted parameters, not something a reader checks


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


def _outcomes(card: dict[str, Any]) -> list[str]:
    sentence = card.get("training_outcomes")
    return ["## Training outcomes", "", f"Trained on {sentence}."] if sentence else []


def _backtest(card: dict[str, Any]) -> list[str]:
    windows: list[dict[str, Any]] = card.get("backtest") or []
    if not windows:
        return []
    rows = [[w["window"], f"{w['test_from']} to {w['test_to']}", _fmt("deals", w["train_deals"]),
             _fmt("deals", w["test_deals"]), _fmt("roc_auc", w["roc_auc"]), _fmt("lift_top_10pct", w["lift_top_10pct"]),
             _fmt("ece", w["ece"]) if not w.get("skipped") else w["skipped"]] for w in windows]
    return ["## Backtest over time", "",
            "Each window: a model trained as this one was, on the deals decided before the window, tested on it.", "",
            *_table(["window", "decided", "trained on", "tested on", "ROC AUC", "lift top 10 %", "ECE"], rows),
            "", f"{card.get('backtest_summary', '')}."]


def _limits(card: dict[str, Any]) -> list[str]:
    limits: list[str] = card.get("limits") or []
    return ["## Known limits", "", *(f"- {limit}" for limit in limits)] if limits else []


def _feedback(card: dict[str, Any]) -> list[str]:
    """Who was right, the model or the reps, on closed leads with rep feedback (pipeline.feedback.outcomes)."""
    if "feedback" not in card:
        return []
    found = card["feedback"] or {}
    lines = ["## Rep feedback: who was right", "", *(f"- {note}" for note in card.get("feedback_notes") or [])]
    if found.get("status") != "ok":
        return lines

    def row(label: str, group: dict[str, Any], model: str) -> list[Any]:
        interval = (f"{group['ci_low']:.0%}-{group['ci_high']:.0%}" if group.get("ci_low") is not None else "—")
        rate = f"{group['win_rate']:.0%}" if group.get("win_rate") is not None else "—"
        forecast = group.get(model)
        return [label, group["leads"], group["won"], rate, interval,
                f"{forecast:.0%}" if forecast is not None else "—", group.get("judged", "")]

    verdicts, overrides = found["verdicts"], found["overrides"]
    rows = [row(f"reps {name}d", verdicts[name], "model_expected_win_rate") for name in ("agree", "disagree")]
    rows += [row(f"reps {name}", overrides[name], "rep_value_win_rate") for name in ("raised", "lowered")]
    header = ["closed leads", "leads", "won", "win rate", "interval", "model forecast / reps' value rate", "judged"]
    return [*lines, "", *_table(header, rows)]


def card_contents(meta: ModelMeta, *, provenance: Provenance | None, metrics: dict[str, Any],
                  promotion: dict[str, Any], leakage: dict[str, Any] | None,
                  feedback: dict[str, Any] | None = None, feedback_notes: list[str] | None = None,
                  verdict: Verdict | None = None) -> dict[str, Any]:
    """What the card says, from the model's metadata and provenance, the holdout metrics, the gate
    decisions, the leakage guard's report and the who-was-right report on rep feedback (with its notes)."""
    split = meta.split
    keep = ("roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "pr_auc", "log_loss", "brier", "brier_before_calibration",
            "ece", "ece_before_calibration", "base_rate", "n_test", "n_test_won")
    limits = [
        "Trained on closed deals only: open deals that are never closed in the CRM are not represented.",
        f"The holdout is the newest {split.test.rows} closed deals ({split.method} split); figures can "
        "drift as the market and the sales process change.",
        "Reasons are exact SHAP contributions of this model, not causes: they say what the score rests on.",
    ]
    verdict = verdict or model_verdict(metrics, promoted=promotion.get("promoted"))
    if verdict.warns:  # the board's banner says the same
        limits.insert(0, verdict.advice)
    return {
        "model_version": meta.model_version,
        "created_at": provenance.trained_at if provenance else None,
        "git_commit": provenance.commit_text() if provenance else None,
        "data_sha256": meta.train_data_sha256,
        "params_sha256": meta.params_sha256,
        "data_window": {name: getattr(split, name).model_dump() for name in SPLITS} | {"split_method": split.method},
        "features_used": [{"name": s.name, "label": s.label, "role": s.role} for s in meta.features],
        "features_dropped": (leakage or {}).get("dropped", {}),
        "metrics": {k: metrics[k] for k in keep if k in metrics} | {
            k: v for k, v in metrics.items() if k.startswith(("lift_", "capture_"))},
        "baselines": metrics.get("baselines", {}),
        "conversion_by_grade": metrics.get("conversion_by_grade", {}),
        "calibration": meta.calibration.model_dump(),
        "training_outcomes": (provenance.outcomes.sentence() if provenance and provenance.outcomes else None),
        "backtest": metrics.get("backtest", []),
        "backtest_summary": metrics.get("backtest_summary"),
        "gates": promotion["gates"],
        "promoted": promotion["promoted"],
        "decision": promotion["decision"],
        "limits": limits,
    } | ({"feedback": feedback, "feedback_notes": feedback_notes or []} if feedback is not None else {})


SECTIONS = (_decision, _metrics, _baselines, _backtest, _grades, _calibration, _outcomes, _feedback, _data_window,
            _features, _limits)
KNOWN_KEYS = {"model_version", "created_at", "git_commit", "data_sha256", "params_sha256", "data_window",
              "features_used", "features_dropped", "metrics", "baselines", "conversion_by_grade", "calibration",
              "gates", "promoted", "decision", "limits", "training_outcomes", "backtest", "backtest_summary",
              "feedback", "feedback_notes"}


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
