"""The gates a model must pass, as pure decisions on figures already computed: enough outcomes to
train and judge on (before training), then signal, baselines and champion (before promotion)."""

from __future__ import annotations

from typing import Any

from pipeline.config import GatesParams, SufficiencyParams
from pipeline.errors import DataError


def require_enough_outcomes(summary: dict[str, Any], minimums: SufficiencyParams) -> None:
    """The data-sufficiency gate: enough won and lost deals to learn from and to judge the model on.
    ``summary`` has ``rows`` and ``won`` per slice (train, valid, test)."""
    needs = {"train": (minimums.min_won_train, minimums.min_lost_train), "valid": (1, 1),
             "test": (minimums.min_won_test, minimums.min_lost_test)}
    short = []
    for name, (min_won, min_lost) in needs.items():
        rows, won = summary[name]["rows"], summary[name]["won"]
        if won < min_won or rows - won < min_lost:
            short.append(f"the {name} slice has {won} won and {rows - won} lost deals (needs at least {min_won} won "
                         f"and {min_lost} lost)")
    if short:
        raise DataError("not enough closed deals to train and judge a model: " + "; ".join(short)
                        + ". Provide more history, or lower sufficiency.min_* / change split.valid_fraction and "
                          "split.test_fraction in params.yaml")


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
