"""Promotion: the gates decided against the registry's current champion, and the champion alias moved
only when the model passes them all."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.config import GatesParams
from pipeline.errors import ModelError
from pipeline.mlops import registry
from pipeline.mlops.tracking import Store
from pipeline.modeling.gates import gate_decisions
from pipeline.modeling.model import LoadedModel, load_model

log = logging.getLogger(__name__)


def decide(store: Store, model: LoadedModel, *, metrics: dict[str, Any], test: pd.DataFrame, gates: GatesParams,
           confidence: float) -> dict[str, Any]:
    """Run the gates against the registry's champion on the same holdout (``test``) and promote the
    model if it passes them all. Returns the decision as promotion.json holds it."""
    sha = model.meta.model_sha256
    challenger = registry.version_of(store, sha)
    champion = registry.aliased(store)
    champion_auc, note = None, "no champion yet: the first model that passes the other gates becomes it"
    if champion is not None and champion.model_sha256 == sha:
        note = f"this model is already the champion (version {champion.version})"
        challenger = champion  # the same bytes registered again by a rerun: the alias stays where it is
    elif champion is not None:
        try:
            with tempfile.TemporaryDirectory(prefix="leadscore-champion-") as tmp:
                old = load_model(registry.download(store, champion, Path(tmp)))
            y = test["label"].to_numpy(dtype=int)
            champion_auc = float(roc_auc_score(y, old.predict_proba(test)))
        except ModelError as exc:  # e.g. trained on other features: it cannot be scored on this holdout
            note = f"the champion (version {champion.version}) cannot be scored on this holdout: {exc}"
            log.warning(note)
    decisions = gate_decisions(metrics, gates=gates, champion_auc=champion_auc, champion_note=note,
                               confidence=confidence)
    failed = [g for g in decisions if not g["passed"]]
    if challenger is None:
        failed.append({"gate": "registered", "passed": False,
                       "detail": f"model {model.version} is not in the MLflow registry; run `leadscore train` again"})
    promoted = not failed
    if promoted and challenger is not None and (champion is None or champion.version != challenger.version):
        registry.promote(store, challenger)
    after = registry.aliased(store)
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
        "gates": decisions + [g for g in failed if g["gate"] == "registered"],
        "challenger": {"model_version": model.version, "model_sha256": sha,
                       "registry_version": challenger.version if challenger else None},
        "champion_before": champion.as_dict() if champion else None,
        "champion": after.as_dict() if after else None,
        "champion_auc_on_this_holdout": None if champion_auc is None else round(champion_auc, 6),
    }
