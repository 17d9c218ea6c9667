"""The gates a model must pass, as pure decisions on figures already computed: enough outcomes to
train and judge on (before training), then signal, baselines and champion (before promotion)."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ChampionComparison:
    """What the champion gate weighs: the challenger against the champion on the same holdout."""

    paired: dict[str, dict[str, float]] | None  # challenger − champion: roc_auc, brier, ece (metrics.paired_bootstrap)
    age_days: float | None                       # since the champion was trained
    note: str                                     # which champion; or none, already it, or why it can't be compared
    comparable: bool                              # False: it exists but could not be fetched or scored: fail closed


def _interval(d: dict[str, float], digits: int = 3) -> str:
    return f"{d['delta']:+.{digits}f} ({d['low']:+.{digits}f} to {d['high']:+.{digits}f})"


def gate_decisions(metrics: dict[str, Any], *, gates: GatesParams, champion: ChampionComparison | None,
                   confidence: float) -> list[dict[str, Any]]:
    """Each gate: its name, whether it passed, and the figures behind it in plain words, intervals
    included (``confidence``, paired bootstrap on the same holdout)."""
    out = []
    low, auc = metrics["roc_auc_ci_low"], metrics["roc_auc"]
    out.append({"gate": "signal", "passed": bool(metrics["better_than_chance"]),
                "detail": f"holdout ROC AUC {auc:.3f}, {confidence:.0%} CI from {low:.3f}: "
                          + ("better than chance (0.5)" if metrics["better_than_chance"]
                             else "not significantly better than chance (0.5)")})
    baselines = metrics.get("baselines") or {}
    if gates.must_beat_baselines and baselines:
        out.append(_baselines_gate(baselines, tolerance=gates.baseline_tolerance, confidence=confidence))
    out.append(_champion_gate(champion, gates=gates, confidence=confidence))
    return out


def _baselines_gate(baselines: dict[str, Any], *, tolerance: float, confidence: float) -> dict[str, Any]:
    """Against each baseline, the paired interval of AUC(model) − AUC(baseline) must reach above 0 (the
    model may be better) and stay above −tolerance (it is not materially worse)."""
    failed, lines = [], []
    for name, figures in baselines.items():
        d = figures["model_minus_baseline"]["roc_auc"]
        ok = d["high"] > 0 and d["low"] > -tolerance
        failed += [] if ok else [name]
        lines.append(f"{name.replace('_', ' ')} {figures['roc_auc']:.3f}, difference {_interval(d)}")
    rule = (f"the model's ROC AUC minus each baseline's ({confidence:.0%} paired interval) must reach above 0 and "
            f"stay above -{tolerance:g}")
    verdict = "passes" if not failed else "fails against " + ", ".join(n.replace("_", " ") for n in failed)
    return {"gate": "baselines", "passed": not failed, "detail": f"{verdict}: {rule}; " + "; ".join(lines)}


def _champion_gate(champion: ChampionComparison | None, *, gates: GatesParams,
                   confidence: float) -> dict[str, Any]:
    """The declared rule: the challenger replaces the champion when, on the same holdout, it ranks no worse
    than ``auc_tolerance`` (paired interval of ΔAUC above −tolerance) and is calibrated no worse than
    ``brier_tolerance`` (paired interval of ΔBrier below +tolerance), and is better in one of them (an
    interval clear of 0), or the champion is older than ``max_champion_age_days``. A champion that can't
    be fetched or scored is never replaced by default: the gate fails closed."""
    if champion is None or (champion.paired is None and champion.comparable):
        return {"gate": "champion", "passed": True,
                "detail": champion.note if champion else "no champion yet: the first model that passes the other "
                                                         "gates becomes it"}
    if champion.paired is None:
        return {"gate": "champion", "passed": False, "detail": champion.note}
    auc, brier, ece = champion.paired["roc_auc"], champion.paired["brier"], champion.paired["ece"]
    ranks = auc["low"] > -gates.auc_tolerance
    calibrated = brier["high"] <= gates.brier_tolerance
    better = auc["low"] > 0 or brier["high"] < 0
    aged = gates.max_champion_age_days > 0 and champion.age_days is not None \
        and champion.age_days > gates.max_champion_age_days
    passed = ranks and calibrated and (better or aged)
    age = f"{champion.age_days:.0f} days old" if champion.age_days is not None else "of unknown age"
    reasons = [f"ranks {'no worse' if ranks else 'worse'} than -{gates.auc_tolerance:g} AUC",
               f"calibrated {'no worse' if calibrated else 'worse'} than +{gates.brier_tolerance:g} Brier",
               "better in ranking or calibration" if better else "better in neither",
               f"the champion is {age}" + (f", older than {gates.max_champion_age_days} days" if aged else "")]
    return {"gate": "champion", "passed": passed,
            "detail": f"challenger − champion{f' ({champion.note})' if champion.note else ''} on the same holdout "
                      f"({confidence:.0%} paired intervals): ROC AUC {_interval(auc)}, Brier {_interval(brier, 4)}, "
                      f"ECE {_interval(ece)}; " + "; ".join(reasons)}
