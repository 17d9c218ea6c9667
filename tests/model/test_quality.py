"""Behavioural tests of the model on synthetic data whose true conversion probability is known."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.evaluate import evaluate, holdout
from pipeline.features import build_features
from pipeline.ingest import ingest, read_export
from pipeline.model import load_model
from pipeline.train import save_model, train
from tests.conftest import make_settings, prepare, truth_for

pytestmark = pytest.mark.slow


def test_holdout_auc_is_within_003_of_the_oracle(default_run, tmp_path: Path) -> None:
    prepared, result = default_run
    save_model(result, tmp_path)
    model = load_model(tmp_path)
    params = prepared.settings.train
    test = holdout(prepared.features, valid_fraction=params.valid_fraction, test_fraction=params.test_fraction)
    model_auc = roc_auc_score(test["label"], model.predict_proba(test))
    oracle_auc = roc_auc_score(test["label"], truth_for(prepared, test))
    print(f"holdout ROC AUC {model_auc:.4f}, oracle {oracle_auc:.4f}, gap {oracle_auc - model_auc:.4f}, "
          f"{len(test)} deals")
    assert oracle_auc > 0.75  # the generator has real signal
    assert model_auc >= oracle_auc - 0.03


def test_more_pricing_page_visits_raise_the_score(default_run, tmp_path: Path) -> None:
    prepared, result = default_run
    save_model(result, tmp_path)
    model = load_model(tmp_path)
    rows = prepared.features.matrix.sample(2000, random_state=0)
    keen = rows.copy()
    for window in prepared.settings.features.event_windows_days:
        keen[f"evt_pricing_page_view_{window}d"] += 3
    keen["days_since_last_event"] = 0
    before, after = model.predict_proba(rows), model.predict_proba(keen)
    assert after.mean() > before.mean() + 0.02
    assert (after >= before).mean() > 0.8


def test_lead_name_does_not_change_the_score(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path)
    model = load_model(tmp_path)
    raw = read_export(small.settings.paths.raw)
    renamed = dict(raw)
    leads = raw["leads"].copy()
    leads["first_name"], leads["last_name"] = "Zed", "Renamed-O'Hara"
    leads["email"] = "someone@else.example"
    renamed["leads"] = leads
    params = small.settings.features
    base = build_features(ingest(raw).tables, params=params).matrix
    other = build_features(ingest(renamed).tables, params=params).matrix
    np.testing.assert_array_equal(model.predict_proba(base), model.predict_proba(other))


def test_an_export_with_no_signal_is_reported_as_no_better_than_chance(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, generate={"n_leads": 4000, "n_accounts": 1000, "signal_scale": 0.0})
    prepared = prepare(tmp_path, settings)
    save_model(train(prepared.features, params=settings.train, seed=settings.seed), tmp_path / "models")
    model = load_model(tmp_path / "models")
    test = holdout(prepared.features, valid_fraction=settings.train.valid_fraction,
                   test_fraction=settings.train.test_fraction)
    metrics = evaluate(model, test, params=settings.evaluate, seed=settings.seed).metrics
    assert metrics["roc_auc_ci_low"] <= 0.5 <= metrics["roc_auc_ci_high"]
    assert metrics["better_than_chance"] is False
