"""Benchmark the features stage against a plain DuckDB reference on a synthetic export.

    python benchmarks/features_bench.py                  # 1M leads, ~20M events (the default)
    python benchmarks/features_bench.py --leads 20000    # a quick check

1. Builds (or reuses) a synthetic export with the project's own ``generate`` and ``ingest`` stages,
   in a cache folder (``benchmarks/.data/`` by default), one sub-folder per set of parameters.
2. Times OUR features stage (``read_interim`` + ``featurise``, as ``leadscore features`` runs it
   without the write) in a fresh subprocess.
3. Times a REFERENCE in a fresh subprocess: one DuckDB query (threads = 2) over the same
   ``records.parquet`` and ``events.parquet`` that counts, for each record and event type, the
   events in the 30 days strictly before the record's as-of date, fetched into Arrow.
4. Checks (on the first repeat) that the reference counts equal our ``evt_<type>_30d`` columns
   for every record and type, and fails loudly if they do not.
5. Times the same stage with the intent features on a 2-worker Dask LocalCluster
   (``leadscore features --engine dask``), and checks that its matrix equals ours, column by column
   (``--no-dask`` skips it).
6. Prints one JSON line per comparison on stdout (``features``, ``features_dask``); everything else
   goes to stderr.

Wall time is measured inside each subprocess around the work only (imports and interpreter
start-up excluded); peak RSS is that subprocess's own maximum resident set size, read with
``os.wait4`` when it exits (so one child's peak never leaks into another's, as it would with
``getrusage(RUSAGE_CHILDREN)``, which is the maximum over every child waited for so far).
Linux carries the parent's peak RSS over into a child's ``ru_maxrss`` (fork and exec keep the
high-water mark), so this parent stays a bare interpreter: it never imports pandas, pyarrow or
the pipeline; building the export and the check run in subprocesses of their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_child, self_peak_mb

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = ROOT / "benchmarks" / ".data"
STAMP_FILE = "bench_params.json"
WINDOW_DAYS = 30
DUCKDB_THREADS = 2

log = logging.getLogger("features_bench")


# ---------------------------------------------------------------- settings and data set


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """What the cached data set depends on."""
    accounts = args.accounts if args.accounts is not None else max(10, args.leads // 5)
    return {"seed": args.seed, "n_leads": args.leads, "n_accounts": accounts,
            "events_per_lead": float(args.events_per_lead)}


def _dataset_dir(args: argparse.Namespace) -> Path:
    p = _params(args)
    name = f"leads{p['n_leads']}-accounts{p['n_accounts']}-epl{p['events_per_lead']:g}-seed{p['seed']}"
    return Path(args.data_dir).resolve() / name


def _settings(args: argparse.Namespace) -> Any:
    """The project's own settings, resolved against the data set's folder: every path of the export
    and of the stages (raw, interim, reports, ...) lands inside it, nothing touches the project's data/."""
    from pipeline.config import parse_settings

    p = _params(args)
    raw = {
        "seed": p["seed"],
        "paths": {"raw": "raw", "ground_truth": "ground_truth", "interim": "interim",
                  "ingest_report": "reports/ingest.json"},  # the other paths default to relative ones too
        "source": {"kind": "synthetic", "dir": "raw"},
        "generate": {"n_leads": p["n_leads"], "n_accounts": p["n_accounts"],
                     "events_per_lead": p["events_per_lead"]},
    }
    return parse_settings(raw, source="features_bench").resolve(_dataset_dir(args))


def _interim_dir(args: argparse.Namespace) -> Path:
    """Where ingest writes for this data set (``paths.interim`` of :func:`_settings`, without importing it)."""
    return _dataset_dir(args) / "interim"


def _expected_stamp(args: argparse.Namespace) -> dict[str, Any]:
    """What the interim files depend on: the bench's parameters, the full generate settings, the
    source mapping, and the code of generate and ingest. A cached data set is reused only if equal."""
    import hashlib

    from pipeline.contracts import fields, files
    from pipeline.data import generate, ingest, parsing, sources
    from pipeline.io import tables

    settings = _settings(args)
    mapping = sources.explicit_mapping(settings.source).model_dump(mode="json", exclude={"dir"})
    code = {Path(m.__file__ or "").name: hashlib.sha256(Path(m.__file__ or "").read_bytes()).hexdigest()[:16]
            for m in (generate, ingest, parsing, sources, tables, fields, files)}
    return {"params": _params(args), "generate": settings.generate.model_dump(mode="json"), "mapping": mapping,
            "code": code}


def _read_stamp(args: argparse.Namespace) -> Any:
    try:
        return json.loads((_dataset_dir(args) / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _features_fingerprint() -> str:
    """A short hash of pipeline/features/ as it is now, to tie the figures to the code they measured."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "pipeline" / "features").glob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- children (one fresh process each)


def _child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """generate + ingest into the data set's folder, then stamp it with its parameters."""
    from pipeline.stages import generate, ingest

    settings = _settings(args)
    expected = _expected_stamp(args)  # taken before the work: code edited meanwhile means a rebuild next time
    stamp = _dataset_dir(args) / STAMP_FILE
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    generate.run(settings)
    t1 = time.perf_counter()
    ingest.run(settings)
    t2 = time.perf_counter()
    stamp.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {"generate_s": t1 - t0, "ingest_s": t2 - t1}


def _child_compile(args: argparse.Namespace) -> dict[str, Any]:
    """Build the intent features of a two-lead log once, so numba has compiled the stage's kernels
    into its on-disk cache before anything is timed (the first run after an install or a change of
    `intent.py` compiles them: a one-time cost of ~2 s). The timed run still loads them from that
    cache, as every `leadscore features` does."""
    import pandas as pd

    from pipeline.features.events import EventLog
    from pipeline.features.intent import intent_features

    events = pd.DataFrame({"event_key": ["a", "b"], "event_type": ["x", "y"],
                           "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]")})
    started = time.perf_counter()
    for log_ in (EventLog.from_frame(events), events.astype({"event_key": "category", "event_type": "category"})):
        intent_features(pd.Series(["a", "b"]), pd.Series(pd.to_datetime(["2024-02-01"] * 2)), log_, types=["x"],
                        windows=[30], half_life_days=30.0, accounts=pd.Series(["acme", "acme"]),
                        key_accounts=pd.DataFrame({"event_key": ["a", "b"], "account_key": ["acme", "acme"]}))
    return {"seconds": time.perf_counter() - started}


def _child_ours(args: argparse.Namespace, out: Path | None) -> dict[str, Any]:
    """OUR features stage as `leadscore features` runs it, without the write: read the interim files,
    build every feature (account roll-ups included), and run the leakage guard."""
    from pipeline.features.interim import read_interim
    from pipeline.runtime import keep_freed_memory
    from pipeline.stages.features import featurise

    keep_freed_memory()  # as `leadscore` does at start-up (pipeline/__init__ has set NumPy's huge pages off)
    settings = _settings(args)
    assert settings.paths.interim == _interim_dir(args), "the parent and the children disagree on paths.interim"
    baseline = self_peak_mb()
    t0 = time.perf_counter()
    interim = read_interim(settings.paths.interim)
    features = featurise(interim.records, interim.events, interim.fields, settings=settings,
                         event_accounts=interim.event_accounts)
    elapsed = time.perf_counter() - t0
    peak_timed = self_peak_mb()
    matrix = features.matrix
    if out is not None:
        columns = ["record_id", *[c for c in matrix.columns if _our_window_column(c)]]
        matrix[columns].to_parquet(out / "ours.parquet", index=False)
    return {"seconds": elapsed, "rows": len(matrix), "events": 0 if interim.events is None else len(interim.events),
            "features": len(features.specs), "baseline_rss_mb": baseline, "peak_rss_timed_mb": peak_timed,
            "digest": matrix_digest(matrix)}


def matrix_digest(matrix: Any) -> str:
    """A SHA-256 over every column's name, dtype and values: equal digests, equal matrices."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    for name in matrix.columns:
        column = matrix[name]
        digest.update(f"{name}:{column.dtype}".encode())
        values = column.to_numpy()
        if values.dtype.kind in "fiub":
            digest.update(values.tobytes())
        else:
            digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _child_dask(args: argparse.Namespace) -> dict[str, Any]:
    """The same stage with the intent features on a LocalCluster of ``--dask-workers`` (the
    cluster's start-up included in the time, as `leadscore features --engine dask` pays it)."""
    import resource

    from pipeline.features.dask import DaskEvents
    from pipeline.features.interim import read_interim
    from pipeline.runtime import keep_freed_memory
    from pipeline.stages.features import featurise

    keep_freed_memory()
    settings = _settings(args)
    t0 = time.perf_counter()
    with DaskEvents(settings.paths.interim / "events.parquet", workers=args.dask_workers) as events:
        started = time.perf_counter() - t0
        interim = read_interim(settings.paths.interim, events_on=lambda path: events)
        features = featurise(interim.records, interim.events, interim.fields, settings=settings,
                             event_accounts=interim.event_accounts)
        elapsed = time.perf_counter() - t0
        workers = events.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"seconds": elapsed, "cluster_start_s": started, "rows": len(features.matrix),
            "worker_peak_rss_mb": sorted(workers.values()), "digest": matrix_digest(features.matrix)}


def reference_sql(records: Path, events: Path, *, window_days: int = WINDOW_DAYS) -> str:
    """Counts of events per record and event type in the ``window_days`` strictly before the as-of date.

    As-of date: the decision date of a closed record (won / lost), else the scoring date, midnight
    after the latest decision date, created date or event timestamp. Long format: one row per
    (record, event type) with at least one event in the window; absent means zero.
    """

    def lit(path: Path) -> str:
        return "'" + str(path).replace("'", "''") + "'"

    return f"""
WITH records AS (
    SELECT record_id, event_key, outcome, decision_date, created_date FROM read_parquet({lit(records)})
),
events AS (
    SELECT event_key, event_type, "timestamp" FROM read_parquet({lit(events)})
),
scoring AS (
    SELECT CAST(date_trunc('day', greatest(
               (SELECT max(decision_date) FROM records),
               (SELECT max(created_date) FROM records),
               (SELECT max("timestamp") FROM events))) AS TIMESTAMP) + INTERVAL 1 DAY AS scoring_date
),
as_of AS (
    SELECT r.record_id, r.event_key,
           CASE WHEN r.outcome IN ('won', 'lost') THEN coalesce(r.decision_date, s.scoring_date)
                ELSE s.scoring_date END AS as_of
    FROM records AS r CROSS JOIN scoring AS s
)
SELECT a.record_id, e.event_type, count(*) AS n
FROM as_of AS a JOIN events AS e ON e.event_key = a.event_key
WHERE e."timestamp" >= a.as_of - INTERVAL {int(window_days)} DAY AND e."timestamp" < a.as_of
GROUP BY a.record_id, e.event_type
"""


def _child_reference(args: argparse.Namespace, out: Path | None) -> dict[str, Any]:
    """The REFERENCE: one DuckDB query over the interim Parquet files, materialised as an Arrow table."""
    import duckdb

    interim = _interim_dir(args)
    sql = reference_sql(interim / "records.parquet", interim / "events.parquet")
    baseline = self_peak_mb()
    t0 = time.perf_counter()
    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    relation = con.sql(sql)
    # duckdb 2 renamed fetch_arrow_table to to_arrow_table (and .arrow() now returns a batch reader)
    fetch = getattr(relation, "to_arrow_table", None) or getattr(relation, "fetch_arrow_table")  # noqa: B009
    table = fetch()
    elapsed = time.perf_counter() - t0
    peak_timed = self_peak_mb()
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    con.close()
    if out is not None:
        import pyarrow.parquet as pq

        pq.write_table(table, out / "reference.parquet")
    return {"seconds": elapsed, "rows": table.num_rows, "threads": threads[0] if threads else None,
            "duckdb": duckdb.__version__, "baseline_rss_mb": baseline, "peak_rss_timed_mb": peak_timed}


def _run_child(kind: str, args: argparse.Namespace, out: Path | None = None) -> dict[str, Any]:
    """Run ``kind`` in a fresh interpreter; its result, plus its wall time and own peak RSS (MiB)."""
    return run_child(Path(__file__), args.argv, kind, out=out, name="features_bench")


# ---------------------------------------------------------------- the check


def _our_window_column(name: str) -> str | None:
    """The event type of one of our ``evt_<type>_30d`` columns, else None."""
    m = re.fullmatch(rf"evt_(?P<type>.+)_{WINDOW_DAYS}d", name)
    return m.group("type") if m else None


def _child_check(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cells = check_equal(out / "ours.parquet", out / "reference.parquet",
                        max_event_types=_settings(args).features.max_event_types)
    return {"cells": cells}


def check_equal(ours_path: Path, reference_path: Path, *, max_event_types: int) -> int:
    """Compare the reference's counts with our evt_<type>_30d columns, every record and type; cells compared."""
    import numpy as np
    import pandas as pd

    ours = pd.read_parquet(ours_path)
    ref = pd.read_parquet(reference_path)
    type_of = {c: _our_window_column(c) for c in ours.columns if c != "record_id"}
    types = sorted(t for t in type_of.values() if t)
    if not types:
        raise SystemExit(f"features_bench: CHECK FAILED: our feature matrix has no evt_<type>_{WINDOW_DAYS}d columns "
                         f"(columns: {', '.join(ours.columns)})")
    ours_ids = ours["record_id"].astype(str)
    if ours_ids.duplicated().any():
        raise SystemExit("features_bench: CHECK FAILED: record_id is not unique in our feature matrix")
    ref["record_id"] = ref["record_id"].astype(str)
    ref["event_type"] = ref["event_type"].astype(str)
    unknown_ids = set(ref["record_id"]) - set(ours_ids)
    if unknown_ids:
        raise SystemExit(f"features_bench: CHECK FAILED: {len(unknown_ids)} record ids in the reference are not in "
                         f"our matrix, e.g. {sorted(unknown_ids)[:5]}")
    ref_types = set(ref["event_type"])
    if len(types) < max_event_types and not ref_types <= set(types):
        raise SystemExit(f"features_bench: CHECK FAILED: event types {sorted(ref_types - set(types))} have events in "
                         f"the window but no evt_<type>_{WINDOW_DAYS}d column of ours")
    wide = (ref.set_index(["record_id", "event_type"])["n"].unstack(fill_value=0)
            .reindex(index=ours_ids.to_numpy(), columns=types, fill_value=0).fillna(0))
    expected = wide.to_numpy(dtype=np.int64)
    got_float = ours[[f"evt_{t}_{WINDOW_DAYS}d" for t in types]].to_numpy(dtype=float)
    got = np.nan_to_num(got_float, nan=-1).astype(np.int64)
    bad = np.argwhere((got != expected) | np.isnan(got_float))
    if len(bad):
        examples = [f"record {ours_ids.iloc[i]} type {types[j]}: ours {got_float[i, j]:g}, reference {expected[i, j]}"
                    for i, j in bad[:10]]
        raise SystemExit(f"features_bench: CHECK FAILED: {len(bad)} of {expected.size} (record, type) counts differ "
                         f"between our evt_<type>_{WINDOW_DAYS}d and the reference:\n  " + "\n  ".join(examples))
    log.info("check: reference == ours for %d records x %d types (%d cells, %d non-zero)",
             expected.shape[0], expected.shape[1], expected.size, int((expected != 0).sum()))
    return int(expected.size)


# ---------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads in the synthetic export (default 1M)")
    parser.add_argument("--events-per-lead", type=float, default=16.0, help="mean events per lead (default 16)")
    parser.add_argument("--accounts", type=int, default=None, help="accounts (default: leads / 5)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"cache of generated exports (default {DEFAULT_DATA_DIR.relative_to(ROOT)}/)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each side, alternating; medians reported (default 3: the first run "
                             "of a process that touches gigabytes of fresh memory varies the most on a VM)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate and re-ingest even if cached")
    parser.add_argument("--no-check", action="store_true", help="skip comparing the reference with our counts")
    parser.add_argument("--no-dask", action="store_true", help="skip the features_dask line (a Dask LocalCluster)")
    parser.add_argument("--dask-workers", type=int, default=2, help="LocalCluster workers for features_dask")
    parser.add_argument("--child", choices=["stamp", "prepare", "compile", "ours", "reference", "check", "dask"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # passed on to the children
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if str(ROOT) not in sys.path:  # `pipeline` importable without the editable install too
        sys.path.insert(0, str(ROOT))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if args.child:
        children = {
            "stamp": lambda: _expected_stamp(args),
            "compile": lambda: _child_compile(args),
            "prepare": lambda: _child_prepare(args),
            "ours": lambda: _child_ours(args, args.child_out),
            "reference": lambda: _child_reference(args, args.child_out),
            "check": lambda: _child_check(args, args.child_out),
            "dask": lambda: _child_dask(args),
        }
        args.child_result.write_text(json.dumps(children[args.child]()), encoding="utf-8")
        return 0

    dataset = _dataset_dir(args)
    stale = "--rebuild"
    if not args.rebuild:
        found, expected = _read_stamp(args), _run_child("stamp", args)
        expected = {k: expected[k] for k in ("params", "generate", "mapping", "code")}
        if found is None:
            stale = "not built yet"
        elif found != expected:
            stale = "built with other " + ", ".join(k for k in expected if found.get(k) != expected[k])
        else:
            stale = ""
    if stale:
        log.info("building the synthetic export in %s (%s): %s", dataset, stale, _params(args))
        prep = _run_child("prepare", args)
        log.info("generate %.1f s, ingest %.1f s, peak RSS %.0f MB", prep["generate_s"], prep["ingest_s"],
                 prep["peak_rss_mb"])
    else:
        log.info("reusing the synthetic export in %s", dataset)
    log.info("pipeline/features fingerprint %s", _features_fingerprint())
    compiled = _run_child("compile", args)
    log.info("numba kernels compiled or found in the cache in %.1f s (not timed)", compiled["seconds"])

    ours_runs: list[dict[str, Any]] = []
    ref_runs: list[dict[str, Any]] = []
    dask_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="features_bench.check.", dir=dataset) as tmp:
        for i in range(args.repeat):
            out = Path(tmp) if i == 0 and not args.no_check else None  # the first run also writes what is checked
            ours = _run_child("ours", args, out)
            log.info("ours      run %d/%d: %.2f s, peak RSS %.0f MB (%.0f MB after imports, %.0f MB at the end of "
                     "the timed part); %d records, %d events, %d features", i + 1, args.repeat, ours["seconds"],
                     ours["peak_rss_mb"], ours["baseline_rss_mb"], ours["peak_rss_timed_mb"], ours["rows"],
                     ours["events"], ours["features"])
            ref = _run_child("reference", args, out)
            log.info("reference run %d/%d: %.2f s, peak RSS %.0f MB (%.0f MB after imports, %.0f MB at the end of "
                     "the timed part); %d rows, duckdb %s, threads %s", i + 1, args.repeat, ref["seconds"],
                     ref["peak_rss_mb"], ref["baseline_rss_mb"], ref["peak_rss_timed_mb"], ref["rows"],
                     ref["duckdb"], ref["threads"])
            ours_runs.append(ours)
            ref_runs.append(ref)
            if out is not None:
                _run_child("check", args, out)
            if not args.no_dask:
                on_dask = _run_child("dask", args)
                log.info("dask      run %d/%d: %.2f s (%.1f s of it starting the cluster), client peak RSS %.0f MB, "
                         "workers' %s MB; matrix %s", i + 1, args.repeat, on_dask["seconds"],
                         on_dask["cluster_start_s"], on_dask["peak_rss_mb"],
                         ", ".join(f"{m:.0f}" for m in on_dask["worker_peak_rss_mb"]),
                         "equal" if on_dask["digest"] == ours["digest"] else "DIFFERENT")
                if on_dask["digest"] != ours["digest"]:
                    log.error("the Dask engine's matrix differs from the local engine's (digests %s, %s)",
                              on_dask["digest"][:12], ours["digest"][:12])
                    return 1
                dask_runs.append(on_dask)
    log.info("this process's own peak RSS: %.0f MB (a floor under every child's)", self_peak_mb())

    ours_s = statistics.median(r["seconds"] for r in ours_runs)
    ref_s = statistics.median(r["seconds"] for r in ref_runs)
    line = {
        "name": "features",
        "rows": ours_runs[0]["rows"],
        "events": ours_runs[0]["events"],
        "ours_s": round(ours_s, 3),
        "reference_s": round(ref_s, 3),
        "ratio": round(ours_s / ref_s, 2),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ours_runs), 1),
        "reference_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ref_runs), 1),
        "ours_runs_s": [round(r["seconds"], 3) for r in ours_runs],
        "reference_runs_s": [round(r["seconds"], 3) for r in ref_runs],
    }
    sys.stdout.write(json.dumps(line) + "\n")
    if dask_runs:
        dask_s = statistics.median(r["seconds"] for r in dask_runs)
        sys.stdout.write(json.dumps({
            "name": "features_dask",
            "rows": dask_runs[0]["rows"],
            "workers": args.dask_workers,
            "dask_s": round(dask_s, 3),
            "local_s": round(ours_s, 3),
            "ratio": round(dask_s / ours_s, 2),
            "equal": True,
            "cluster_start_s": round(statistics.median(r["cluster_start_s"] for r in dask_runs), 3),
            "client_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in dask_runs), 1),
            "worker_peak_rss_mb": [round(m, 1) for m in dask_runs[0]["worker_peak_rss_mb"]],
            "local_peak_rss_mb": line["peak_rss_mb"],
            "dask_runs_s": [round(r["seconds"], 3) for r in dask_runs],
        }) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
