from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from pipeline.reporting.model_card import render_model_card, write_model_card
from pipeline.reporting.plots import BEFORE_COLOUR, render_plots, render_shap_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID = np.linspace(0, 1, 11)


def _calibration(stages: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"mean_predicted": GRID[1:], "observed_rate": GRID[1:] ** 1.5, "count": np.arange(10) + 5})
    if not stages:
        return frame
    after = frame.assign(observed_rate=GRID[1:] * 0.95, stage="after")
    return pd.concat([frame.assign(stage="before"), after], ignore_index=True)


def _curves(*, stages: bool) -> dict[str, pd.DataFrame]:
    return {
        "roc": pd.DataFrame({"fpr": GRID, "tpr": np.sqrt(GRID)}),
        "precision_recall": pd.DataFrame({"recall": GRID, "precision": 1 - 0.7 * GRID}),
        "gains": pd.DataFrame({"share_of_deals": GRID, "share_of_won": np.sqrt(GRID)}),
        "calibration": _calibration(stages),
        "lift_by_decile": pd.DataFrame({"decile": [1, 2], "lift": [3.0, 2.0]}),
    }


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1024


def _orange_pixels(path: Path) -> int:
    """How many pixels carry the 'before calibration' colour."""
    rgb = matplotlib.image.imread(path)[..., :3]
    target = np.array(matplotlib.colors.to_rgb(BEFORE_COLOUR))
    return int((np.abs(rgb - target).max(axis=-1) < 0.05).sum())


def test_render_plots_writes_a_png_per_known_curve_and_skips_unknown_names(tmp_path: Path) -> None:
    written = render_plots(_curves(stages=False), tmp_path / "plots")
    assert [p.name for p in written] == ["calibration.png", "gains.png", "precision_recall.png", "roc.png"]
    for path in written:
        _assert_png(path)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [p.name for p in written]  # no temp files left
    assert plt.get_fignums() == []


def test_calibration_with_a_stage_column_draws_the_before_series(tmp_path: Path) -> None:
    single = render_plots({"calibration": _calibration(False)}, tmp_path / "single")[0]
    staged = render_plots({"calibration": _calibration(True)}, tmp_path / "staged")[0]
    _assert_png(staged)
    assert _orange_pixels(single) == 0
    assert _orange_pixels(staged) > 100


def test_render_plots_names_the_columns_a_curve_lacks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks column"):
        render_plots({"roc": pd.DataFrame({"fpr": GRID})}, tmp_path)
    assert render_plots({}, tmp_path) == []


def test_render_shap_summary_on_mixed_numeric_and_categorical_features(tmp_path: Path,
                                                                       rng: np.random.Generator) -> None:
    n = 200
    features = pd.DataFrame({
        "employees": rng.integers(1, 5000, n),
        "pricing_visits": rng.poisson(2.0, n).astype(float),
        "industry": pd.Series(rng.choice(["saas", "retail", "health"], n), dtype="str").mask(rng.random(n) < 0.15),
        "region": pd.Categorical(rng.choice(["emea", "na", "apac"], n)),
        "has_budget": rng.random(n) < 0.4,
        "days_since_touch": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(20.0, n)),
    })
    assert features["industry"].isna().any()
    contributions = rng.normal(0.0, 0.5, (n, features.shape[1]))
    before = features.copy()
    path = render_shap_summary(contributions, features, tmp_path / "shap_summary.png", max_display=4)
    assert path == tmp_path / "shap_summary.png"
    _assert_png(path)
    pd.testing.assert_frame_equal(features, before)  # the caller's frame is not touched
    assert plt.get_fignums() == []
    # A DVC output: the same values draw the same bytes, and NumPy's global generator is left as it was.
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    again = render_shap_summary(contributions, features, tmp_path / "again.png", max_display=4)
    assert again.read_bytes() == path.read_bytes() and np.random.random() == expected_next
    with pytest.raises(ValueError, match="base-value"):
        render_shap_summary(np.zeros((n, features.shape[1] + 1)), features, tmp_path / "bad.png")


@pytest.fixture
def full_card() -> dict[str, Any]:
    return {
        "model_version": "lgbm-0123456789ab",
        "created_at": "2026-11-22T19:00:00Z",
        "git_commit": None,
        "data_sha256": "d" * 64,
        "params_sha256": "p" * 64,
        "data_window": {
            "train": {"rows": 12345, "won": 2345, "as_of_from": "2023-01-02", "as_of_to": "2024-06-30"},
            "valid": {"rows": 2100, "won": 400, "as_of_from": "2024-07-01", "as_of_to": "2024-09-30"},
            "test": {"rows": 2200, "won": 420, "as_of_from": "2024-10-01", "as_of_to": "2024-12-31"},
            "split_method": "time",
        },
        "features_used": [{"name": "employees", "label": "Employees", "role": "firmographic"},
                          {"name": "budget", "label": "Budget | authority", "role": "qualification"}],
        "features_dropped": {"stage_at_close": 0.991, "last_activity_after_close": 0.97},
        "metrics": {"roc_auc": 0.812345, "roc_auc_ci_low": 0.79, "roc_auc_ci_high": 0.83, "pr_auc": 0.5123,
                    "brier": 0.1234, "log_loss": 0.40123, "ece_after": 0.0123, "lift_top_10pct": 2.5,
                    "n_test": 2200, "better_than_chance": True},
        "baselines": {"base_rate": {"roc_auc": 0.5, "brier": 0.155, "log_loss": 0.49},
                      "logistic_regression": {"roc_auc": 0.7712, "pr_auc": 0.45, "brier": 0.13, "log_loss": 0.42}},
        "conversion_by_grade": {"A": {"deals": 1200, "won": 540, "rate": 0.45},
                                "D": {"deals": 300, "won": 12, "rate": 0.04}},
        "calibration": {"method": "isotonic", "params": {"x": list(GRID), "y": list(GRID)},
                        "chosen_by": {"cv_brier": {"isotonic": 0.12345, "platt": 0.1301}, "folds": 5}},
        "gates": [{"gate": "beats logistic baseline", "passed": True, "detail": "AUC 0.8123 vs 0.7712"},
                  {"gate": "AUC CI above 0.5", "passed": False, "detail": "low 0.49"}],
        "promoted": False,
        "decision": "Not promoted: one gate failed, the current model stays in production.",
        "limits": ["Trained on synthetic CRM data.", "Deals older than 2023 are not represented."],
    }


def test_model_card_renders_every_section(tmp_path: Path, full_card: dict[str, Any]) -> None:
    path = write_model_card(tmp_path / "reports" / "model_card.md", full_card)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Model card: lgbm-0123456789ab"
    assert list(path.parent.iterdir()) == [path]  # the temp file was renamed, not left behind
    assert "- Git commit: not recorded" in lines
    # comparison table: the model first, then each baseline, absent figures as a dash
    table = [line for line in lines if line.startswith(("| model (", "| base_rate", "| logistic_regression"))]
    assert table == ["| model (lgbm-0123456789ab) | 0.8123 | 0.5123 | 0.1234 | 0.4012 |",
                     "| base_rate | 0.5000 | — | 0.1550 | 0.4900 |",
                     "| logistic_regression | 0.7712 | 0.4500 | 0.1300 | 0.4200 |"]
    assert "| model | roc_auc | pr_auc | brier | log_loss |" in lines
    assert "| beats logistic baseline | passed | AUC 0.8123 vs 0.7712 |" in lines
    assert "| AUC CI above 0.5 | FAILED | low 0.49 |" in lines
    assert "**Promoted: no.** Not promoted: one gate failed, the current model stays in production." in lines
    assert lines.index("| stage_at_close | 0.9910 |") < lines.index("| last_activity_after_close | 0.9700 |")
    assert "- Trained on synthetic CRM data." in lines and "- Deals older than 2023 are not represented." in lines
    assert "| train | 12,345 | 2,345 | 2023-01-02 | 2024-06-30 |" in lines
    assert "| A | 1,200 | 540 | 0.450 |" in lines
    assert "| n_test | 2,200 |" in lines and "| better_than_chance | yes |" in lines
    assert "| lift_top_10pct | 2.50x |" in lines and "| ece_after | 0.012 |" in lines
    assert "- method: isotonic" in lines and "- chosen_by.cv_brier.isotonic: 0.1235" in lines
    assert "- params.x: 11 values (not shown)" in lines  # fitted breakpoints are not dumped into the card


def test_model_card_escapes_pipes_in_table_cells(full_card: dict[str, Any]) -> None:
    text = render_model_card(full_card)
    assert "| budget | Budget \\| authority | qualification |" in text.splitlines()


def test_model_card_from_a_version_alone(tmp_path: Path) -> None:
    path = write_model_card(tmp_path / "model_card.md", {"model_version": "x"})
    assert path.read_text(encoding="utf-8") == "# Model card: x\n"
    sparse = render_model_card({"model_version": "x", "created_at": None, "metrics": {"roc_auc": float("nan")}})
    assert sparse.splitlines()[2] == "- Created: not recorded"
    assert "| roc_auc | n/a |" in sparse
    with pytest.raises(ValueError, match="model_version"):
        render_model_card({"metrics": {"roc_auc": 0.8}})
