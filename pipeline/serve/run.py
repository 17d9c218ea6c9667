"""Start `leadscore serve`: the app over the score stage's scores (or another scores .parquet), the
score history of this export and the feedback database, bound to loopback unless told otherwise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from pipeline.config import Settings
from pipeline.contracts.files import SCORES_PARQUET
from pipeline.errors import ConfigError
from pipeline.feedback import FeedbackStore, evaluation_notes
from pipeline.mlops.promotion import scoring_verdict
from pipeline.mlops.tracking import registered_name
from pipeline.scoring.history import History
from pipeline.serve.app import ServeConfig, create_app
from pipeline.serve.auth import is_loopback

log = logging.getLogger(__name__)

SECRET_ENV = "LEADSCORE_SERVE_SECRET"


def serve_config(settings: Settings, *, host: str, scores: Path | None = None, sign_in: bool = False,
                 store: FeedbackStore) -> ServeConfig:
    """The app's settings. Bound beyond loopback, sign-in is required and needs at least one user."""
    path = scores or settings.paths.scores / SCORES_PARQUET
    must_sign_in = sign_in or not is_loopback(host)
    if must_sign_in and not store.has_users():
        raise ConfigError(f"serve: bound to {host}, every rep must sign in, and the feedback database has no user "
                          "yet; add them first: `leadscore users add NAME --owner 'CRM owner name'` "
                          "(--manager for one who sees every lead)")
    history = None
    if settings.history.enabled:
        model_history = History(settings.paths.history, registered_name(settings.registry, settings.source))

        def lead_runs(record_id: str, runs: int) -> pd.DataFrame:
            return model_history.lead(record_id, last=runs)

        history = lead_runs
    return ServeConfig(scores=path, history=history, sign_in=must_sign_in, secret=os.environ.get(SECRET_ENV),
                       notes=tuple(evaluation_notes(settings.paths.evaluation)),
                       verdict=_verdict(settings.paths.promotion, path))


def _verdict(promotion: Path, scores: Path) -> str | None:
    """The board's banner on the model that scored ``scores`` (its first row's model), when it warns."""
    try:
        first = pd.read_parquet(scores, columns=["model_version", "model_status"]).head(1)
    except (OSError, ValueError, KeyError):
        return None
    if not len(first):
        return None
    verdict = scoring_verdict(promotion, model_version=str(first["model_version"].iloc[0]),
                              status=str(first["model_status"].iloc[0]))
    return verdict.advice if verdict is not None and verdict.warns else None


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, scores: Path | None = None,
          sign_in: bool = False) -> None:
    import uvicorn

    store = FeedbackStore.from_settings(settings)
    config = serve_config(settings, host=host, scores=scores, sign_in=sign_in, store=store)
    app = create_app(config, store)
    log.info("serving %s on http://%s:%d (%s)", config.scores, host, port,
             "sign-in required" if config.sign_in else "this machine only, no sign-in")
    uvicorn.run(app, host=host, port=port, log_level="warning")
