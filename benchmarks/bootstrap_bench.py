"""Benchmark the evaluation's bootstrap (pipeline.modeling.metrics) against the per-round sklearn calls it replaced.

    python benchmarks/bootstrap_bench.py                   # a holdout of 2,800 deals, 500 rounds
    python benchmarks/bootstrap_bench.py --deals 20000     # a bigger holdout
    python benchmarks/bootstrap_bench.py --rounds 100      # a quick check

1. Makes a seeded holdout: ``--deals`` outcomes (about 27 % won) and two sets of scores that rank them
   with some signal, one continuous and one on a coarse grid (many ties, as a rule baseline's).
2. Times ``bootstrap_auc`` and ``paired_bootstrap`` (ours) against the same loops written with
   ``roc_auc_score`` per round (the reference), alternating, the median of ``--repeat`` runs each.
3. Checks that both give the same figures, exactly (same resamples, same per-round AUCs).
4. Prints one JSON line on stdout per function (ratio: ours / the reference); details go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pipeline` importable without the editable install too
    sys.path.insert(0, str(ROOT))

from common import timed  # noqa: E402  (after the sys.path line)

from pipeline.modeling.calibration import expected_calibration_error  # noqa: E402
from pipeline.modeling.metrics import bootstrap_auc, paired_bootstrap  # noqa: E402

log = logging.getLogger("bootstrap_bench")

WON_SHARE = 0.27
CONFIDENCE = 0.95
BINS = 10
GRID = 20  # the tied scores take this many levels


def make_holdout(deals: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes, continuous scores and tied scores (both probabilities with some signal)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(deals) < WON_SHARE).astype(int)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=deals) + 1.2 * y - 1.0)))
    q = np.round(np.clip(p + rng.normal(0.0, 0.15, deals), 0.0, 1.0) * GRID) / GRID
    return y, p, q


def sklearn_interval(y: np.ndarray, p: np.ndarray, *, rounds: int, seed: int) -> tuple[float, float]:
    """bootstrap_auc with roc_auc_score per round."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], p[idx]))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def sklearn_paired(y: np.ndarray, p: np.ndarray, q: np.ndarray, *, rounds: int, seed: int
                   ) -> dict[str, dict[str, float]]:
    """paired_bootstrap with roc_auc_score per round."""
    def measures(rows: np.ndarray) -> np.ndarray:
        yy = y[rows]
        return np.array([roc_auc_score(yy, p[rows]) - roc_auc_score(yy, q[rows]),
                         np.mean((p[rows] - yy) ** 2) - np.mean((q[rows] - yy) ** 2),
                         expected_calibration_error(yy, p[rows], bins=BINS)
                         - expected_calibration_error(yy, q[rows], bins=BINS)])

    point = measures(np.arange(len(y)))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() != y[rows].max():
            draws.append(measures(rows))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(np.array(draws), [tail, 100 - tail], axis=0)
    return {name: {"delta": round(float(point[i]), 6), "low": round(float(low[i]), 6),
                   "high": round(float(high[i]), 6)}
            for i, name in enumerate(("roc_auc", "brier", "ece"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=2800, help="holdout deals (default 2,800: the default run's)")
    parser.add_argument("--rounds", type=int, default=500, help="bootstrap rounds (default 500: params.yaml's)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side; medians (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    y, p, q = make_holdout(args.deals, seed=args.seed)
    cases = {
        "bootstrap_auc": (lambda: bootstrap_auc(y, q, rounds=args.rounds, confidence=CONFIDENCE, seed=args.seed),
                          lambda: sklearn_interval(y, q, rounds=args.rounds, seed=args.seed)),
        "paired_bootstrap": (lambda: paired_bootstrap(y, p, q, rounds=args.rounds, confidence=CONFIDENCE,
                                                      seed=args.seed, bins=BINS),
                             lambda: sklearn_paired(y, p, q, rounds=args.rounds, seed=args.seed)),
    }
    failed = False
    for name, (ours_fn, reference_fn) in cases.items():
        ours_s, reference_s, ours, reference = timed(ours_fn, reference_fn, args.repeat)
        identical = ours == reference
        log.info("%s: ours %.3f s, sklearn per round %.3f s; identical figures: %s", name, ours_s, reference_s,
                 identical)
        print(json.dumps({"name": name, "deals": args.deals, "rounds": args.rounds, "ours_s": round(ours_s, 4),
                          "reference_s": round(reference_s, 4), "ratio": round(ours_s / reference_s, 3),
                          "identical": identical}))
        failed |= not identical
    if failed:
        log.error("the bootstrap's figures differ from the sklearn loop's")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
