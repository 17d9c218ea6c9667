"""Optional hyper-parameter search on the validation slice (``train.tuning_trials``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightgbm as lgb

from pipeline.config import TrainParams
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

Fit = Callable[[TrainParams, lgb.Dataset, lgb.Dataset], lgb.Booster]

TUNED = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2")


def tune(params: TrainParams, dtrain: lgb.Dataset, dvalid: lgb.Dataset, *, fit: Fit,
         seed: int) -> tuple[TrainParams, dict[str, Any]]:
    """``train.tuning_trials`` Optuna trials (seeded TPE, one at a time, so reruns agree) that search
    the tree params for the best validation ROC AUC. The holdout is never seen; the params given in
    params.yaml are trial 0, so tuning can only keep them or find better on validation. ``fit`` trains
    one candidate with early stopping on ``dvalid``."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError("train.tuning_trials > 0 needs Optuna: pip install 'leadscore[tune]' (or set "
                          "train.tuning_trials: 0)") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        candidate = params.model_copy(update={
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 2, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        })
        booster = fit(candidate, dtrain, dvalid)
        return float(booster.best_score["valid"]["auc"])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({name: getattr(params, name) for name in TUNED})
    study.optimize(objective, n_trials=params.tuning_trials, n_jobs=1)
    best = params.model_copy(update=study.best_params)
    given = float(study.trials[0].value or 0.0)
    log.info("Optuna: %d trials; best validation ROC AUC %.4f with %s (the params given: %.4f)",
             len(study.trials), study.best_value, study.best_params, given)
    report = {"trials": len(study.trials), "best_valid_auc": round(study.best_value, 6),
              "given_params_valid_auc": round(given, 6), "best_params": study.best_params}
    return best, report
