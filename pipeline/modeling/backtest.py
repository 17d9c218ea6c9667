"""Rolling-origin backtest: is the model still good, over time?

The newest closed deals are cut into ``windows`` consecutive windows of the holdout's size (the
last one is the holdout). For each, a model is trained exactly as the train stage trains, on what
was known before the window opened (its newest part validates and calibrates), and tested on the
window: ROC AUC, lift in the top 10 % and calibration error, per window. A model whose figures
fall from one window to the next is drifting; one good holdout figure is not a trend.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.config import SplitParams, SufficiencyParams, TrainParams
from pipeline.contracts.features import FeatureSet
from pipeline.errors import DataError
from pipeline.modeling.calibration import Calibration, expected_calibration_error
from pipeline.modeling.metrics import lift_at
from pipeline.modeling.model import prepare_matrix
from pipeline.modeling.split import model_columns
from pipeline.modeling.train import predict_rows, train
from pipeline.runtime import quieted

log = logging.getLogger(__name__)

LIFT_FRACTION = 0.1


@dataclass(frozen=True)
class Window:
    """One backtest window: trained on the deals decided before ``test_from``, tested on those from
    ``test_from`` to ``test_to``."""

    window: int
    train_deals: int          # train and validation, all decided before the window
    test_from: str
    test_to: str
    test_deals: int
    test_won: int
    roc_auc: float | None     # None when the window's outcomes are all alike
    lift_top_10pct: float | None
    ece: float | None
    skipped: str | None = None  # why no model could be trained for the window

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def backtest(features: FeatureSet, *, windows: int, params: TrainParams, split: SplitParams,
             sufficiency: SufficiencyParams, seed: int, calibration_bins: int) -> list[Window]:
    """The ``windows`` newest windows, oldest first. Needs decision dates: without them there is no
    time order, and it returns no window."""
    # Row positions, never copies of the closed deals: at 5M leads each copy was gigabytes.
    matrix = features.matrix
    labeled = np.flatnonzero(matrix["label"].notna().to_numpy())
    keys = matrix[["as_of", "record_id"]].iloc[labeled]
    as_of = pd.to_datetime(keys["as_of"])
    if windows == 0 or as_of.nunique() < 2:
        return []
    by_time = keys.assign(_as_of=as_of.to_numpy(), _at=labeled).sort_values(["_as_of", "record_id"], kind="stable")
    ordered = by_time["_at"].to_numpy()  # the closed deals' positions, oldest first
    del keys, by_time
    inputs = model_columns(matrix, [s.name for s in features.specs], "label")
    n = len(ordered)
    size, valid = round(n * split.test_fraction), round(n * split.valid_fraction)
    fit = n // size if size else 0
    if fit < windows:
        log.warning("backtest: %d windows of %d deals fit in %d closed deals, not %d", fit, size, n, windows)
        windows = fit
    found = []
    for k in range(windows):
        end = n - (windows - 1 - k) * size
        start = end - size
        window = matrix[["as_of", "label"]].iloc[ordered[start:end]]
        dates = pd.to_datetime(window["as_of"])
        base = Window(window=k + 1, train_deals=start, test_from=f"{dates.min():%Y-%m-%d}",
                      test_to=f"{dates.max():%Y-%m-%d}", test_deals=len(window), test_won=int(window["label"].sum()),
                      roc_auc=None, lift_top_10pct=None, ece=None)
        if start - valid <= 0:
            found.append(dataclasses.replace(base, skipped="no deals decided before it to train on"))
            continue
        cut = SplitParams(valid_fraction=valid / end, test_fraction=size / end)
        try:
            with quieted("pipeline.modeling.train", "pipeline.modeling.calibration"):
                result = train(features, params=params, split=cut, sufficiency=sufficiency, seed=seed, drift_bins=2,
                               rows=ordered[:end], describe=False)
        except DataError as exc:  # too few outcomes before this window: say so, and go on
            found.append(dataclasses.replace(base, skipped=str(exc)[:200]))
            continue
        # every row of ordered[:end] is closed, so the split is theirs, in that order
        tested = matrix[inputs].iloc[ordered[:end][result.split.to_numpy() == "test"]]
        x = prepare_matrix(tested, specs=features.specs, levels=result.description["category_levels"])
        raw = predict_rows(result.booster, x, num_iteration=result.best_iteration)
        p = Calibration.from_dict(result.description["calibration"]).apply(raw)
        y = tested["label"].to_numpy(dtype=int)
        mixed = 0 < y.sum() < len(y)
        found.append(dataclasses.replace(
            base,
            roc_auc=round(float(roc_auc_score(y, p)), 6) if mixed else None,
            lift_top_10pct=round(lift_at(y, p, LIFT_FRACTION)[0], 6) if mixed else None,
            ece=round(expected_calibration_error(y, p, bins=calibration_bins), 6),
        ))
        log.info("backtest window %d (%s to %s, %d deals, trained on %d before): ROC AUC %s", k + 1,
                 base.test_from, base.test_to, len(window), start,
                 f"{found[-1].roc_auc:.3f}" if found[-1].roc_auc is not None else "n/a")
    return found


def backtest_table(found: list[Window]) -> pd.DataFrame:
    """The windows as a table: the dvc plots line (x: window) and the PNG."""
    columns = ["window", "test_from", "test_to", "test_deals", "roc_auc", "lift_top_10pct", "ece"]
    return pd.DataFrame([{c: getattr(w, c) for c in columns} for w in found], columns=columns)


def backtest_summary(found: list[Window]) -> str:
    """In plain words, for the log and the model card."""
    scored = [w for w in found if w.roc_auc is not None]
    if not scored:
        return "no backtest window could be scored" if found else "no backtest (no decision dates, or windows: 0)"
    aucs = [w.roc_auc for w in scored if w.roc_auc is not None]
    trend = aucs[-1] - aucs[0]
    return (f"{len(scored)} backtest windows from {scored[0].test_from} to {scored[-1].test_to}: ROC AUC from "
            f"{min(aucs):.3f} to {max(aucs):.3f} ({'+' if trend >= 0 else ''}{trend:.3f} from the first window to the "
            "last)")
