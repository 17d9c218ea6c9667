"""Benchmark batch scoring: end to end against raw LightGBM, memory as the input grows, and Dask.

    python benchmarks/score_bench.py            # the full run (200k / 2M / 20M rows; about 15 minutes)
    python benchmarks/score_bench.py --quick    # ten times smaller

Prints one JSON line per measurement on stdout (everything else goes to stderr):

- ``score``: ``leadscore score --input in.parquet --output out.parquet`` as a user runs it
  (read -> model matrix -> predict -> exact SHAP -> reasons, what would raise it, checklist -> write),
  timed around :func:`pipeline.stages.score.run_batch`, against raw LightGBM ``predict`` plus
  ``predict(pred_contrib=True)`` (2 threads) on the pre-built model matrix of the same rows.
  ratio = ours_s / reference_s: the overhead of everything we add (our SHAP kernel is in "ours").
- ``memory``: peak RSS of scoring 2M rows divided by that of 200k rows, explanations on, the same
  chunk size; ``memory_no_explain``: the same for 20M vs 2M rows with ``--no-explain``.
- ``dask``: a 2-worker LocalCluster against the local engine on the same input (ratio = dask / local;
  on one machine the cluster adds overhead: a sanity figure, not a speed-up).

The model is the kind the scoring has to be fast for: LightGBM with 31 leaves and 300 trees (no early
stopping), trained with the project's own ``train`` on a synthetic export's feature matrix, saved as
the project saves models (text + JSON metadata, drift reference included). Inputs are generated on
the fly (rows drawn from that feature matrix, with new ids) into a temporary folder, never stored in git.
Every measurement runs in a fresh subprocess (``benchmarks/common.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_child

NUM_LEAVES, NUM_TREES = 31, 300
log = logging.getLogger("score_bench")


# ---------------------------------------------------------------- children


def _settings(work: Path) -> Any:
    from pipeline.config import parse_settings

    raw = {"paths": {"raw": "raw", "ground_truth": "ground_truth", "interim": "interim",
                     "ingest_report": "reports/ingest.json", "models": "models", "mlflow_db": "mlflow.db"},
           "source": {"kind": "synthetic", "dir": "raw"}, "generate": {"n_leads": 20000, "n_accounts": 5000}}
    return parse_settings(raw, source="score_bench").resolve(work)


def _child_prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A synthetic export -> features -> the project's train -> a 31-leaf, 300-tree booster in its place."""
    import lightgbm as lgb
    import numpy as np

    from pipeline.data.generate import generate, write_export
    from pipeline.data.ingest import ingest
    from pipeline.modeling.drift import reference_profile
    from pipeline.modeling.model import prepare_matrix
    from pipeline.modeling.train import TrainResult, lgb_params, save_model, train
    from pipeline.stages.features import featurise

    settings = _settings(work)
    export = generate(params=settings.generate, seed=settings.seed)
    write_export(export, raw_dir=settings.paths.raw, truth_dir=settings.paths.ground_truth)
    ingested = ingest(settings.source)
    features = featurise(ingested.records, ingested.events, ingested.fields, settings=settings,
                         event_accounts=ingested.event_accounts)
    result = train(features, params=settings.train, split=settings.split, sufficiency=settings.sufficiency,
                   seed=settings.seed, drift_bins=settings.drift.bins)
    labeled = features.matrix[features.matrix["label"].notna()]
    x = prepare_matrix(labeled, specs=features.specs, levels=result.description["category_levels"])
    config = {**lgb_params(settings.train, seed=settings.seed), "num_leaves": NUM_LEAVES, "min_data_in_leaf": 20,
              "lambda_l2": 1.0}
    booster = lgb.train(config, lgb.Dataset(x, label=labeled["label"].to_numpy()), num_boost_round=NUM_TREES)
    scores = np.rint(np.asarray(booster.predict(x), dtype=float) * 100)
    description = {**result.description, "best_iteration": NUM_TREES, "lightgbm_params": config,
                   "calibration": {"method": "none", "params": {}, "chosen_by": {}},
                   "drift_reference": reference_profile(x, features.specs, scores, bins=settings.drift.bins)}
    save_model(TrainResult(booster=booster, best_iteration=NUM_TREES, description=description, split=result.split),
               settings.paths.models, params_sha256="score_bench")
    features.matrix.to_parquet(work / "base.parquet", index=False)
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    return {"features": len(features.specs), "trees": len(leaves), "max_leaves": max(leaves),
            "mean_leaves": float(np.mean(leaves))}


def _child_make_input(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``--rows`` rows drawn from the base feature matrix with new ids, written 100k at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pq.read_table(work / "base.parquet")
    rng = np.random.default_rng(args.seed)
    writer = None
    step = 100_000
    for start in range(0, args.rows, step):
        n = min(step, args.rows - start)
        part = base.take(rng.integers(0, base.num_rows, n))
        ids = pa.array([f"B{i:09d}" for i in range(start, start + n)])
        part = part.set_column(part.schema.get_field_index("record_id"), "record_id", ids)
        if writer is None:
            writer = pq.ParquetWriter(args.input, part.schema)
        writer.write_table(part, row_group_size=step)
    if writer is not None:
        writer.close()
    return {"rows": args.rows}


def _child_ours(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``leadscore score --input --output`` as the CLI runs it, timed around the work."""
    from pipeline.runtime import keep_freed_memory
    from pipeline.stages.score import run_batch

    keep_freed_memory()
    settings = _settings(work)
    t0 = time.perf_counter()
    summary = run_batch(settings, input_path=Path(args.input), output_path=Path(args.output),
                        model_name=str(settings.paths.models), chunk_rows=args.chunk_rows,
                        explain=False if args.no_explain else None)
    return {"seconds": time.perf_counter() - t0, "rows": summary.rows_out}


def _child_dask(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pipeline.stages.score import run_batch

    settings = _settings(work)
    t0 = time.perf_counter()
    summary = run_batch(settings, input_path=Path(args.input), output_path=Path(args.output),
                        model_name=str(settings.paths.models), engine="dask", workers=2)
    return {"seconds": time.perf_counter() - t0, "rows": summary.rows_out}


def _child_reference(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Raw LightGBM on the pre-built matrix: predict + pred_contrib, 2 threads."""
    import pandas as pd

    from pipeline.modeling.model import load_model

    model = load_model(_settings(work).paths.models)
    x = model.matrix(pd.read_parquet(args.input))
    t0 = time.perf_counter()
    model.booster.predict(x, num_threads=2)
    model.booster.predict(x, pred_contrib=True, num_threads=2)
    return {"seconds": time.perf_counter() - t0, "rows": len(x)}


CHILDREN = {"prepare": _child_prepare, "make_input": _child_make_input, "ours": _child_ours,
            "dask": _child_dask, "reference": _child_reference}


# ---------------------------------------------------------------- parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="ten times fewer rows everywhere")
    parser.add_argument("--score-rows", type=int, default=200_000, help="rows of the score and dask runs")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of score; medians reported")
    parser.add_argument("--only", choices=["score", "memory", "memory_no_explain", "dask"], action="append",
                        help="run only these measurements (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--no-explain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _child(work: Path, kind: str, **extra: Any) -> dict[str, Any]:
    argv = ["--work", str(work)]
    for key, value in extra.items():
        if value is True:
            argv.append(f"--{key.replace('_', '-')}")
        elif value not in (None, False):
            argv += [f"--{key.replace('_', '-')}", str(value)]
    return run_child(Path(__file__), argv, kind, name="score_bench")


def _line(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.child:
        result = CHILDREN[args.child](args, args.work)
        args.child_result.write_text(json.dumps(result), encoding="utf-8")
        return
    scale = 10 if args.quick else 1
    only = set(args.only or ["score", "memory", "memory_no_explain", "dask"])
    with tempfile.TemporaryDirectory(prefix="score_bench.") as tmp:
        work = Path(tmp)
        model = _child(work, "prepare")
        log.info("model: %s", model)
        inputs: dict[int, Path] = {}

        def rows_file(n: int) -> Path:
            if n not in inputs:
                inputs[n] = work / f"in-{n}.parquet"
                _child(work, "make_input", rows=n, input=inputs[n], seed=args.seed)
            return inputs[n]

        last: dict[tuple[int, bool], dict[str, Any]] = {}  # the latest run of each (rows, explain)

        def ours(n: int, *, explain: bool = True) -> dict[str, Any]:
            result = _child(work, "ours", input=rows_file(n), output=work / "out.parquet",
                            chunk_rows=args.chunk_rows, no_explain=not explain)
            log.info("ours %d rows%s: %.1f s, peak RSS %.0f MB", n, "" if explain else " (no explain)",
                     result["seconds"], result["peak_rss_mb"])
            last[(n, explain)] = result
            return result

        def measured(n: int, *, explain: bool = True) -> dict[str, Any]:
            """A run already made with the same rows and settings, or a new one."""
            return last.get((n, explain)) or ours(n, explain=explain)

        n = args.score_rows // scale
        if "score" in only:
            runs = [ours(n) for _ in range(args.repeat)]
            refs = [_child(work, "reference", input=rows_file(n)) for _ in range(args.repeat)]
            ours_s = statistics.median(r["seconds"] for r in runs)
            ref_s = statistics.median(r["seconds"] for r in refs)
            _line(name="score", rows=n, ours_s=round(ours_s, 3), reference_s=round(ref_s, 3),
                  ratio=round(ours_s / ref_s, 3), peak_rss_mb=round(max(r["peak_rss_mb"] for r in runs), 1),
                  reference_peak_rss_mb=round(max(r["peak_rss_mb"] for r in refs), 1), model=model,
                  chunk_rows=args.chunk_rows)
        memory = [(name, small // scale, big // scale, explain) for name, small, big, explain in
                  (("memory", 200_000, 2_000_000, True), ("memory_no_explain", 2_000_000, 20_000_000, False))
                  if name in only]
        for i, (name, small, big, explain) in enumerate(memory):
            small_run, big_run = measured(small, explain=explain), ours(big, explain=explain)
            _line(name=name, rows=big, ours_s=round(big_run["seconds"], 3),
                  reference_s=round(small_run["seconds"], 3),
                  ratio=round(big_run["peak_rss_mb"] / small_run["peak_rss_mb"], 3),
                  peak_rss_mb=round(big_run["peak_rss_mb"], 1), reference_rows=small,
                  reference_peak_rss_mb=round(small_run["peak_rss_mb"], 1), chunk_rows=args.chunk_rows)
            still_needed = {n} | {rows for _, a, b, _ in memory[i + 1:] for rows in (a, b)}
            if big in inputs and big not in still_needed:
                inputs.pop(big).unlink()  # the biggest input is a few GB: drop it once no measurement needs it
        if "dask" in only:
            local = measured(n)
            dask = _child(work, "dask", input=rows_file(n), output=work / "out-dask.parquet")
            _line(name="dask", rows=n, ours_s=round(dask["seconds"], 3), reference_s=round(local["seconds"], 3),
                  ratio=round(dask["seconds"] / local["seconds"], 3), peak_rss_mb=round(dask["peak_rss_mb"], 1),
                  workers=2)


if __name__ == "__main__":
    main()
