"""Exact SHAP values: whatever the route, contributions plus the base value equal the raw score."""

from pathlib import Path

import numpy as np

from pipeline.explain.shap import Explainer
from pipeline.modeling.model import load_model
from pipeline.modeling.train import save_model
from tests.conftest import PARAMS_SHA256


def test_shap_contributions_add_up_to_the_raw_score(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    x = model.matrix(small.features.matrix.head(300))
    phi, base = Explainer(model.booster, route="auto").explain(x)
    raw = model.booster.predict(x, raw_score=True)
    np.testing.assert_allclose(phi.sum(axis=1) + base, raw, atol=1e-6)
