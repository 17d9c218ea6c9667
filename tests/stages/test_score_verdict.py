"""The lead board's banner on the scoring model says what the evaluate log and the model card say."""

import json
from pathlib import Path

from pipeline.mlops.promotion import scoring_verdict
from pipeline.modeling.metrics import holdout_figures, model_verdict

FIGURES = {"roc_auc": 0.479, "roc_auc_ci_low": 0.41, "roc_auc_ci_high": 0.55, "n_test": 120, "base_rate": 0.3,
           "better_than_chance": False}


def test_the_board_takes_the_verdict_the_evaluate_stage_kept_for_this_model(tmp_path: Path) -> None:
    path = tmp_path / "promotion.json"
    path.write_text(json.dumps({"promoted": False, "challenger": {"model_version": "lgbm-1"},
                                "holdout": holdout_figures(FIGURES, confidence=0.95)}))
    found = scoring_verdict(path, model_version="lgbm-1", status="unpromoted")
    assert found == model_verdict(FIGURES, confidence=0.95, promoted=False)
    assert found is not None and "do not use its scores to prioritise leads" in found.advice
    other = scoring_verdict(path, model_version="lgbm-2", status="unpromoted")
    assert other == model_verdict(None, promoted=False)  # judged elsewhere: a rough guide
    assert scoring_verdict(tmp_path / "none.json", model_version="lgbm-2",
                           status="champion") is None
