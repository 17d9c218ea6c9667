"""Rep input never becomes a feature: no feature, training or scoring module reads the feedback package
or its columns, and the feature matrix of an export holds none of them."""

from __future__ import annotations

from pipeline.feedback import FEEDBACK_COLUMNS
from tests.conftest import REPO, Prepared

MODEL_SIDE = ("features", "modeling", "scoring", "explain", "data")


def test_no_model_side_module_reads_feedback() -> None:
    found = []
    for package in MODEL_SIDE:
        for module in (REPO / "pipeline" / package).rglob("*.py"):
            text = module.read_text(encoding="utf-8")
            if "pipeline.feedback" in text or any(f'"{c}"' in text for c in FEEDBACK_COLUMNS):
                found.append(str(module.relative_to(REPO)))
    assert not found, found


def test_the_feature_matrix_and_spec_hold_no_rep_value(small: Prepared) -> None:
    matrix, names = small.features.matrix, set(small.features.names)
    assert not set(FEEDBACK_COLUMNS) & (set(matrix.columns) | names)
    assert not any(n.startswith(("rep_", "override_", "final_")) for n in names)


def test_the_features_and_train_stages_read_no_feedback() -> None:
    for stage in ("features", "train"):
        assert "feedback" not in (REPO / "pipeline" / "stages" / f"{stage}.py").read_text(encoding="utf-8"), stage
