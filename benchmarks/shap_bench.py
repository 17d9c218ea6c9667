"""Benchmark our compiled TreeSHAP (pipeline.explain.treeshap) against LightGBM's ``pred_contrib``.

    python benchmarks/shap_bench.py                          # 50,000 rows, 300 trees of 31 leaves
    python benchmarks/shap_bench.py --trees 200 --leaves 15  # the smaller model
    python benchmarks/shap_bench.py --rows 5000 --repeat 1   # a quick check

1. Makes a seeded synthetic binary problem: 30 numeric features (~10% NaN) and 10 categorical ones
   (5-50 levels, ~5% missing), with a label that depends on both.
2. Trains LightGBM on it (``--train-rows``, ``--trees`` rounds of ``--leaves`` leaves, no early stopping,
   deterministic, 2 threads).
3. On ``--rows`` held-out rows (NaN included, and category codes the model never saw) times our kernel,
   after a warm-up call that compiles it (or loads it from numba's cache), against
   ``booster.predict(x, pred_contrib=True, num_threads=2)``: the median of ``--repeat`` runs each.
4. Checks every row: max abs difference to ``pred_contrib``, and contributions + base = raw score.
5. Prints one JSON line on stdout; details (model size, tables, build and compile time) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pipeline` importable without the editable install too
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import self_peak_mb, timed  # noqa: E402

from pipeline.explain.treeshap import TreeShap, _contributions  # noqa: E402  (after the sys.path line)

log = logging.getLogger("shap_bench")

N_NUMERIC = 30
N_CATEGORICAL = 10
NUM_THREADS = 2
TOLERANCE = 1e-6


def make_data(rows: int, *, seed: int, unseen: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features (numeric first, then category codes as floats, NaN for missing) and a 0/1 label.

    The level counts and effects are fixed, so train and held-out sets share them; ``unseen`` puts codes
    past the training levels into ~2% of the categorical cells."""
    fixed = np.random.default_rng(20261122)
    levels = fixed.integers(5, 51, N_CATEGORICAL)
    effects = [fixed.normal(0.0, 0.6, n) for n in levels]
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, N_NUMERIC))
    codes = np.stack([rng.integers(0, n, rows) for n in levels], axis=1)
    logit = (0.8 * numeric[:, 0] - 0.6 * numeric[:, 1] * numeric[:, 2] + np.sin(2 * numeric[:, 3])
             + 0.5 * (numeric[:, 4] > 0.5) + 0.3 * numeric[:, 5:10].sum(axis=1) - 0.2 * np.abs(numeric[:, 10]))
    for j in range(N_CATEGORICAL):
        logit += effects[j][codes[:, j]]
    label = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    categorical = codes.astype(float)
    if unseen:
        new = rng.random(categorical.shape) < 0.02
        categorical[new] = (levels + 7 + rng.integers(0, 40, categorical.shape))[new]
    numeric[rng.random(numeric.shape) < 0.10] = np.nan
    categorical[rng.random(categorical.shape) < 0.05] = np.nan
    return np.hstack([numeric, categorical]), label


def train(x: np.ndarray, y: np.ndarray, *, trees: int, leaves: int, seed: int) -> lgb.Booster:
    params = {"objective": "binary", "num_leaves": leaves, "learning_rate": 0.05, "max_depth": -1,
              "min_data_in_leaf": 20, "num_threads": NUM_THREADS, "deterministic": True, "seed": seed,
              "verbose": -1}
    data = lgb.Dataset(x, y, categorical_feature=list(range(N_NUMERIC, N_NUMERIC + N_CATEGORICAL)))
    return lgb.train(params, data, num_boost_round=trees)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="held-out rows explained (default 50,000)")
    parser.add_argument("--train-rows", type=int, default=100_000, help="training rows (default 100,000)")
    parser.add_argument("--trees", type=int, default=300, help="boosting rounds (default 300)")
    parser.add_argument("--leaves", type=int, default=31, help="num_leaves (default 31)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side; medians (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    x_train, y_train = make_data(args.train_rows, seed=args.seed)
    x, _ = make_data(args.rows, seed=args.seed + 1, unseen=True)
    started = time.perf_counter()
    booster = train(x_train, y_train, trees=args.trees, leaves=args.leaves, seed=args.seed)
    log.info("trained %d trees in %.1f s", booster.num_trees(), time.perf_counter() - started)

    started = time.perf_counter()
    explainer = TreeShap.from_booster(booster)
    build_s = time.perf_counter() - started
    stats = explainer.stats
    full = sum(1 for tree in booster.dump_model()["tree_info"] if tree["num_leaves"] == args.leaves)
    log.info("model: %d trees (%d with %d leaves), %d leaves, max depth %d, up to %d unique features on a path",
             stats["trees"], full, args.leaves, stats["leaves"], stats["max_depth"], stats["max_path_features"])
    log.info("tables: %d units, %.1f MB (%d-bit), %d leaves computed per row; built in %.3f s",
             stats["units"], explainer.table_nbytes / 2**20, stats["table_bits"], stats["polynomial_leaves"],
             build_s)

    started = time.perf_counter()
    explainer.contributions(x[:64], num_threads=NUM_THREADS)
    cache = "loaded from numba's cache" if _contributions.stats.cache_hits else "compiled"
    log.info("first call %.3f s (kernel %s)", time.perf_counter() - started, cache)

    ours_s, reference_s, ours, reference = timed(
        lambda: explainer.contributions(x, num_threads=NUM_THREADS),
        lambda: np.asarray(booster.predict(x, pred_contrib=True, num_threads=NUM_THREADS)), args.repeat)
    raw = booster.predict(x, raw_score=True, num_threads=NUM_THREADS)
    max_abs_diff = float(np.abs(ours - reference).max())
    additivity = float(np.abs(ours.sum(axis=1) - raw).max())
    log.info("ours %.3f s, pred_contrib %.3f s; max |ours - pred_contrib| %.2e, max |sum - raw score| %.2e",
             ours_s, reference_s, max_abs_diff, additivity)

    peak_rss_mb = self_peak_mb()  # this process trained the model too: the peak covers both sides
    print(json.dumps({"name": "shap", "rows": args.rows, "ours_s": round(ours_s, 4),
                      "reference_s": round(reference_s, 4), "ratio": round(reference_s / ours_s, 2),
                      "peak_rss_mb": round(peak_rss_mb, 1), "max_abs_diff": max_abs_diff}))
    if max_abs_diff > TOLERANCE or additivity > TOLERANCE:
        log.error("contributions differ from pred_contrib by more than %g", TOLERANCE)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
