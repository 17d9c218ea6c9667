"""The whole pipeline at scale, stage by stage, and how ingest's memory grows with the export.

    python benchmarks/pipeline_bench.py                          # 5M leads, ~100M events: the pipeline_5m line
    python benchmarks/pipeline_bench.py --leads 200000           # a quick run of the same
    python benchmarks/pipeline_bench.py --ingest-memory          # the ingest_memory line: 5M leads against 500k

Prints one JSON line on stdout (logs and the stages' own output on stderr):

- ``pipeline_5m`` (named after ``--leads``): ``leadscore generate``, ``ingest``, ``features``,
  ``train``, ``evaluate`` and ``score`` run in turn, each as a process of its own in a work folder
  (``--workdir``, default ``benchmarks/.data/pipeline-<leads>``) holding a params file with only the
  ``generate`` sizes. For each stage: its wall time, its own peak RSS (``os.wait4``), and its exit
  code; a stage that fails (killed for memory, say) ends the run there, and the line says which.
  ``ratio`` = the largest peak RSS against the budget (``--budget-gb``, default 12): at most 1.0 is
  the goal.
- ``ingest_memory``: ``leadscore ingest`` alone at ``--leads`` and at a tenth of it, each export
  made by ``leadscore generate`` first; ``ratio`` = peak RSS at the larger against the smaller (the
  goal is <= 1.5: memory flat in the export's size).

The parent stays a bare interpreter (no pandas, no pipeline): Linux carries a parent's peak RSS
into its children's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LEADSCORE = Path(sys.executable).parent / "leadscore"
STAGES = ("generate", "ingest", "features", "train", "evaluate", "score")


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} pipeline_bench: {message}", file=sys.stderr, flush=True)


def _workdir(args: argparse.Namespace, leads: int) -> Path:
    folder = (args.workdir or REPO / "benchmarks" / ".data" / "pipeline") / f"leads{leads}-epl{args.events_per_lead:g}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(
        f"generate:\n  n_leads: {leads}\n  n_accounts: {max(leads // 5, 1)}\n"
        f"  events_per_lead: {args.events_per_lead}\n", encoding="utf-8")
    return folder


def _stage(name: str, folder: Path) -> dict[str, Any]:
    """Run one stage as its own process in ``folder``: wall time, own peak RSS (MiB), exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(LEADSCORE), name, "-q", "--params", "params.yaml"], cwd=folder,
                            stdout=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    result = {"stage": name, "wall_s": round(time.perf_counter() - started, 1),
              "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1), "exit": code}
    _log(f"{name}: {result['wall_s']} s, peak RSS {result['peak_rss_mb']:.0f} MiB, exit {code}"
         + (f" (killed by signal {-code})" if code < 0 else ""))
    return result


def _pipeline(args: argparse.Namespace) -> dict[str, Any]:
    folder = _workdir(args, args.leads)
    _log(f"the pipeline at {args.leads} leads, {args.events_per_lead:g} events per lead, in {folder}")
    stages = []
    for name in STAGES:
        stages.append(_stage(name, folder))
        if stages[-1]["exit"] != 0:
            break
    peak = max(s["peak_rss_mb"] for s in stages)
    failed = next((s["stage"] for s in stages if s["exit"] != 0), None)
    size = f"{args.leads / 1e6:g}m" if args.leads >= 1_000_000 else f"{args.leads // 1000}k"
    return {"name": f"pipeline_{size}", "leads": args.leads, "events_per_lead": args.events_per_lead,
            "stages": stages, "completed": failed is None, "failed_stage": failed,
            "max_peak_rss_mb": peak, "budget_mb": args.budget_gb * 1024,
            "ratio": round(peak / (args.budget_gb * 1024), 2),
            "total_wall_s": round(sum(s["wall_s"] for s in stages), 1)}


def _ingest_memory(args: argparse.Namespace) -> dict[str, Any]:
    runs = {}
    for leads in (args.leads // 10, args.leads):
        folder = _workdir(args, leads)
        _log(f"ingest at {leads} leads in {folder}")
        generated = _stage("generate", folder)
        if generated["exit"] != 0:
            raise SystemExit(f"pipeline_bench: generate failed at {leads} leads (exit {generated['exit']})")
        runs[leads] = _stage("ingest", folder)
    small, large = runs[args.leads // 10], runs[args.leads]
    return {"name": "ingest_memory", "leads": args.leads, "small_leads": args.leads // 10,
            "peak_rss_mb": large["peak_rss_mb"], "small_peak_rss_mb": small["peak_rss_mb"],
            "ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2),
            "wall_s": large["wall_s"], "small_wall_s": small["wall_s"],
            "completed": large["exit"] == 0 and small["exit"] == 0, "exit": large["exit"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=5_000_000, help="leads in the export (default 5M)")
    parser.add_argument("--events-per-lead", type=float, default=17.0,
                        help="mean events per lead (default 17: about 100M events at 5M leads)")
    parser.add_argument("--workdir", type=Path,
                        help="where the exports and runs go (default benchmarks/.data/pipeline)")
    parser.add_argument("--budget-gb", type=float, default=12.0, help="the peak RSS budget per stage (default 12)")
    parser.add_argument("--ingest-memory", action="store_true", help="the ingest_memory line instead")
    args = parser.parse_args(argv)
    if not LEADSCORE.exists():
        raise SystemExit(f"pipeline_bench: {LEADSCORE} not found; run `make venv` first")
    line = _ingest_memory(args) if args.ingest_memory else _pipeline(args)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    return 0  # a stage that did not complete is a result: the line says which


if __name__ == "__main__":
    sys.exit(main())
