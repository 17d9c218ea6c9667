"""Promotion: the gates decided against the registry's current champion, and the champion alias moved
only when the model passes them all.

It fails closed: a champion whose files can't be fetched, or that can't be scored on this holdout
(trained on other features), is compared with nothing, so nothing replaces it; the decision says
how to replace it by hand. A registry that can't be reached stops the stage (RegistryError).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import EvaluateParams, GatesParams
from pipeline.errors import ModelError
from pipeline.io.files import read_json
from pipeline.mlops import registry
from pipeline.mlops.selection import UNPROMOTED
from pipeline.mlops.tracking import Store
from pipeline.modeling.gates import ChampionComparison, gate_decisions
from pipeline.modeling.metrics import Evaluation, Verdict, model_verdict, paired_bootstrap
from pipeline.modeling.model import LoadedModel, load_model

log = logging.getLogger(__name__)
MS_PER_DAY = 86_400_000


def compare_with_champion(store: Store, champion: registry.Version | None, challenger: registry.Version | None, *,
                          evaluation: Evaluation, test: pd.DataFrame, params: EvaluateParams,
                          seed: int) -> ChampionComparison | None:
    """The challenger against the champion on the same holdout, or why they can't be compared."""
    if champion is None:
        return None
    if challenger is not None and challenger.version == champion.version:
        return ChampionComparison(paired=None, age_days=None, comparable=True,
                                  note=f"this model is already the champion (version {champion.version})")
    if challenger is not None and champion.model_sha256 == challenger.model_sha256 \
            and champion.bundle_sha256 == challenger.bundle_sha256:
        return ChampionComparison(paired=None, age_days=None, comparable=True,
                                  note=f"this model is the champion's bytes (version {champion.version}, retrained "
                                       "on the same data and params): it stays the champion")
    age = None if champion.trained_at_ms is None else (time.time() * 1000 - champion.trained_at_ms) / MS_PER_DAY
    by_hand = (f"if this model is meant to replace it, read its gates, then `leadscore rollback --to "
               f"{challenger.version}`" if challenger is not None else "retrain to register this model")
    try:
        with tempfile.TemporaryDirectory(prefix="leadscore-champion-") as tmp:
            old = load_model(registry.download(store, champion, Path(tmp)))
    except ModelError as exc:
        return ChampionComparison(paired=None, age_days=age, comparable=False,
                                  note=f"the champion (version {champion.version}) cannot be fetched, so it is not "
                                       f"replaced: {exc}. Restore its files, or {by_hand}")
    try:
        q = old.predict_proba(test)
    except ModelError as exc:
        return ChampionComparison(paired=None, age_days=age, comparable=False,
                                  note=f"the champion (version {champion.version}) cannot be scored on this holdout "
                                       f"(trained on other features), so it is not replaced: {exc}. {by_hand}")
    paired = paired_bootstrap(evaluation.y, evaluation.p, np.asarray(q, dtype=float), rounds=params.bootstrap_rounds,
                              confidence=params.confidence, seed=seed, bins=params.calibration_bins)
    return ChampionComparison(paired=paired, age_days=age, comparable=True, note=f"version {champion.version}")


def decide(store: Store, model: LoadedModel, *, evaluation: Evaluation, test: pd.DataFrame, gates: GatesParams,
           params: EvaluateParams, seed: int) -> dict[str, Any]:
    """Run the gates against the registry's champion on the same holdout (``test``) and promote the
    model if it passes them all. Returns the decision as promotion.json holds it."""
    metrics = evaluation.metrics
    sha = model.meta.model_sha256
    challenger = registry.version_of(store, sha)
    champion = registry.aliased(store)
    comparison = compare_with_champion(store, champion, challenger, evaluation=evaluation, test=test,
                                       params=params, seed=seed)
    if comparison is not None and not comparison.comparable:
        log.warning("%s", comparison.note)
    decisions = gate_decisions(metrics, gates=gates, champion=comparison, confidence=params.confidence)
    failed = [g for g in decisions if not g["passed"]]
    if challenger is None:
        failed.append({"gate": "registered", "passed": False,
                       "detail": f"model {model.version} is not in the MLflow registry; run `leadscore train` again"})
    promoted = not failed
    same = champion is not None and challenger is not None and champion.model_sha256 == challenger.model_sha256 \
        and champion.bundle_sha256 == challenger.bundle_sha256  # retrained to the same bytes: nothing moves
    moves = challenger is not None and not same and (champion is None or champion.version != challenger.version)
    if promoted and moves and challenger is not None:
        registry.promote(store, challenger)
    after = registry.aliased(store)
    if promoted and same and after is not None:
        decision = (f"Model {model.version} is the champion already: version {after.version} of {store.model_name} "
                    "holds the same bytes.")
    elif promoted:
        decision = (f"Model {model.version} (registry version {challenger.version if challenger else '?'} of "
                    f"{store.model_name}) is the champion: it passed every gate.")
    else:
        reasons = "; ".join(f"{g['gate']}: {g['detail']}" for g in failed)
        keep = f"version {after.version} stays the champion" if after else "there is no champion yet"
        decision = f"Model {model.version} is recorded but NOT promoted ({reasons}); {keep}."
    return {
        "promoted": promoted,
        "decision": decision,
        "registered_model": store.model_name,
        "gates": decisions + [g for g in failed if g["gate"] == "registered"],
        "challenger": {"model_version": model.version, "model_sha256": sha,
                       "registry_version": challenger.version if challenger else None},
        "champion_before": champion.as_dict() if champion else None,
        "champion": after.as_dict() if after else None,
        "challenger_minus_champion": comparison.paired if comparison else None,
        "champion_age_days": None if comparison is None or comparison.age_days is None
        else round(comparison.age_days, 1),
    }


def scoring_verdict(promotion_path: Path, *, model_version: str, status: str) -> Verdict | None:
    """The verdict on the scoring model (:func:`model_verdict`, one wording for the board, the log and
    the model card): from the holdout figures the evaluate stage kept in promotion.json when it judged
    this very model; for an unpromoted model judged elsewhere, the verdict on a model that failed the
    gates; None for a champion (it passed them)."""
    try:
        promotion = read_json(promotion_path)
    except (OSError, ValueError):
        promotion = {}
    judged = isinstance(promotion, dict) and (promotion.get("challenger") or {}).get("model_version") == model_version
    if judged and isinstance(promotion.get("holdout"), dict):
        promoted = bool(promotion.get("promoted")) or status != UNPROMOTED
        return model_verdict(promotion["holdout"], promoted=promoted)
    return model_verdict(None, promoted=False) if status == UNPROMOTED else None
