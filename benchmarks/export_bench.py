"""Benchmark the nightly job: `leadscore score --export DIR` end to end against the steps it replaces.

    python benchmarks/export_bench.py                 # 200k open leads with their events (about 10 minutes)
    python benchmarks/export_bench.py --open 20000    # a quick check

Prints one JSON line per measurement on stdout (logs on stderr):

- ``export``: ``leadscore score --export big --output ours.csv`` (the first night: no history yet)
  against ``leadscore ingest`` + ``leadscore features`` + keeping the open rows + ``leadscore score
  --input open.parquet --output ref.csv``, each a whole process, on the same export, the same
  model and the same instant. ratio = ours_s / reference_s (goal <= 1.1), with each side's peak RSS
  (the largest of its processes). Both sides must give the same scores and reasons for every lead.
- ``export_next_night``: the job again one day later, when every lead has a previous run: the change
  since then and its exact decomposition per lead, and the history read and appended; against the
  same reference.

The model is the project's default champion (`leadscore run` on the default 20,000-lead synthetic
export, in a temporary project). The big export is the generator's, at ``--open`` + 20,000 leads,
with every deal but the first 20,000 made open (stage Qualification, no close date), so it holds
``--open`` open leads, their activity, and closed deals for the reference's ingest to accept.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("export_bench")
CLOSED = 20_000


def _leadscore() -> str:
    return str(Path(sys.executable).parent / "leadscore")


def _process(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Run one whole process: its wall seconds and its own peak RSS (MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=sys.stderr, env={k: v for k, v in os.environ.items()
                                                                   if not k.startswith("MLFLOW_")})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export_bench: {' '.join(cmd)} failed")
    return wall, usage.ru_maxrss / 1024.0


def _steps(steps: list[list[str]], cwd: Path) -> dict[str, Any]:
    walls, peaks = zip(*(_process(cmd, cwd) for cmd in steps), strict=True)
    return {"wall_s": round(sum(walls), 2), "steps_s": [round(w, 2) for w in walls], "peak_rss_mb": round(max(peaks))}


def _prepare(work: Path, open_leads: int) -> str:
    """The project (trained champion) and the big export; returns the scoring instant."""
    import pandas as pd
    import yaml

    repo = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log.info("training the default champion in %s", work)
    _process([_leadscore(), "run", "-q"], work)

    from pipeline.config import GenerateParams
    from pipeline.data.generate import generate, write_export

    n = open_leads + CLOSED
    log.info("generating the big export: %d leads", n)
    export = generate(params=GenerateParams(n_leads=n, n_accounts=max(n // 4, 10)), seed=11)
    write_export(export, raw_dir=work / "big", truth_dir=work / "big-truth")
    deals = pd.read_csv(work / "big/deals.csv", dtype=str, keep_default_na=False)
    reopen = deals.index >= CLOSED
    deals.loc[reopen, "stage"] = "Qualification"
    deals.loc[reopen, "closed_date"] = ""
    deals.to_csv(work / "big/deals.csv", index=False)
    ref = {**params, "source": {**params["source"], "dir": "big"},
           "paths": {**params["paths"], "interim": "ref/interim", "features": "ref/features",
                     "ingest_report": "ref/ingest.json", "features_report": "ref/features.json"}}
    (work / "ref.yaml").write_text(yaml.safe_dump(ref, sort_keys=False))
    return f"{pd.Timestamp(GenerateParams().export_date):%Y-%m-%d}T00:00:00Z"


def _reference(work: Path, scored_at: str) -> dict[str, Any]:
    keep_open = ("import pandas as pd; m = pd.read_parquet('ref/features/features.parquet'); "
                 "m[m['outcome'] == 'open'].to_parquet('ref/open.parquet', index=False)")
    return _steps([[_leadscore(), "ingest", "-q", "--params", "ref.yaml"],
                   [_leadscore(), "features", "-q", "--params", "ref.yaml"],
                   [sys.executable, "-c", keep_open],
                   [_leadscore(), "score", "-q", "--input", "ref/open.parquet", "--output", "ref/scores.csv",
                    "--model", "models", "--scored-at", scored_at]], work)


def _ours(work: Path, output: str, scored_at: str) -> dict[str, Any]:
    return _steps([[_leadscore(), "score", "-q", "--export", "big", "--output", output, "--model", "models",
                    "--scored-at", scored_at]], work)


def _same_scores(work: Path, ours: str) -> int:
    """Both sides' scores and reasons for every lead (the change columns are the export job's alone)."""
    import pandas as pd

    a = pd.read_csv(work / ours, keep_default_na=False, dtype=str).sort_values("record_id").reset_index(drop=True)
    b = pd.read_csv(work / "ref/scores.csv", keep_default_na=False, dtype=str).sort_values("record_id")
    b = b.reset_index(drop=True)
    shared = [c for c in b.columns if c not in ("previous_score", "score_change", "previous_scored_at", "trend",
                                                "change_reason")]
    pd.testing.assert_frame_equal(a[shared], b[shared])
    return len(a)


def _child(kind: str, work: Path, open_leads: int) -> None:
    """The steps that need pandas run in a child: Linux carries a parent's peak RSS into its children's."""
    if kind == "prepare":
        (work / "scored_at.txt").write_text(_prepare(work, open_leads))
    else:
        (work / "rows.txt").write_text(str(_same_scores(work, "ours.csv")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--open", type=int, default=200_000, help="open leads in the export (default 200,000)")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--child", choices=["prepare", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.child:
        _child(args.child, args.work, args.open)
        return
    with tempfile.TemporaryDirectory(prefix="export_bench.") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        me = [sys.executable, str(Path(__file__).resolve()), "--work", str(work), "--open", str(args.open)]
        _process([*me, "--child", "prepare"], work)
        scored_at = (work / "scored_at.txt").read_text()
        log.info("reference: ingest + features + open rows + score --input")
        reference = _reference(work, scored_at)
        log.info("ours: score --export, the first night")
        ours = _ours(work, "ours.csv", scored_at)
        next_night = f"{scored_at[:10]}T23:59:59Z"
        log.info("ours: score --export, the next night (every lead has a previous run)")
        again = _ours(work, "ours-next.csv", next_night)
        _process([*me, "--child", "check"], work)  # both sides: the same scores and reasons for every lead
        rows = int((work / "rows.txt").read_text())
        for name, side in (("export", ours), ("export_next_night", again)):
            ratio = round(side["wall_s"] / reference["wall_s"], 3)
            print(json.dumps({"bench": name, "open_leads": rows, "ratio": ratio, "ours_s": side["wall_s"],
                              "reference_s": reference["wall_s"],
                              "reference_steps_s": reference["steps_s"], "ours_peak_rss_mb": side["peak_rss_mb"],
                              "reference_peak_rss_mb": reference["peak_rss_mb"]}), flush=True)


if __name__ == "__main__":
    main()
