"""Benchmark `leadscore ingest` against DuckDB doing the same reading, typing, joining and writing.

    python benchmarks/ingest_bench.py                     # 1,000,000 leads, about 20M events (about 10 minutes)
    python benchmarks/ingest_bench.py --leads 200000      # a quick check

Prints one JSON line on stdout (logs on stderr):

- ``ingest``: ``leadscore ingest`` as a whole process on the generator's export at ``--leads`` leads
  (``--leads`` / 4 accounts, ``--events-per-lead`` 16) against one DuckDB process (2 threads, as
  many as the machine has) that reads the same four CSV files as text, types every date and number
  the mapping declares, folds the join keys, joins deals -> leads -> accounts, keeps the events of
  known leads, and writes the records and the events as Parquet. ratio = ours_s / duckdb_s (the
  goal is <= 2.0), with each side's peak RSS in MiB (``os.wait4`` of each process).

Ingest does more than the query: validation with a reason per quarantined row, duplicates, aliases,
spellings, "$3.5M" numbers, the export's clock. The query is the floor of the reading itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The DuckDB side: the synthetic export's four files as the built-in mapping (pipeline/data/synthetic.yaml)
# declares them. Keys are trimmed and case-folded as ingest folds them; numbers lose their thousands commas.
QUERY = """
SET threads = {threads};
CREATE TEMP TABLE leads AS
  SELECT lower(trim(lead_id)) AS lead_key, lower(trim(account_id)) AS account_key, job_title, lead_source,
         try_strptime(trim(created_date), '%Y-%m-%d') AS lead_created,
         try_cast(replace(trim(stated_budget), ',', '') AS DOUBLE) AS stated_budget,
         purchase_timeline, stated_need
  FROM read_csv('{raw}/leads.csv', all_varchar = true, header = true);
CREATE TEMP TABLE accounts AS
  SELECT lower(trim(account_id)) AS account_key, industry, country, parent_company,
         try_cast(replace(trim(employees), ',', '') AS DOUBLE) AS employees,
         try_cast(replace(trim(annual_revenue), ',', '') AS DOUBLE) AS annual_revenue,
         try_cast(trim(founded_year) AS DOUBLE) AS founded_year
  FROM read_csv('{raw}/accounts.csv', all_varchar = true, header = true);
COPY (
  SELECT lower(trim(d.deal_id)) AS record_id, lower(trim(d.stage)) AS stage,
         try_strptime(trim(d.created_date), '%Y-%m-%d') AS created_date,
         try_strptime(trim(d.closed_date), '%Y-%m-%d') AS decision_date,
         try_cast(replace(trim(d.amount), ',', '') AS DOUBLE) AS amount, d.csm_assigned,
         l.*, a.* EXCLUDE (account_key)
  FROM read_csv('{raw}/deals.csv', all_varchar = true, header = true) AS d
  LEFT JOIN leads AS l ON lower(trim(d.lead_id)) = l.lead_key
  LEFT JOIN accounts AS a ON l.account_key = a.account_key
) TO '{out}/records.parquet' (FORMAT parquet);
COPY (
  SELECT lower(trim(e.lead_id)) AS event_key, lower(trim(e.event_type)) AS event_type,
         try_strptime(trim(e.timestamp), '%Y-%m-%d %H:%M:%S') AS timestamp
  FROM read_csv('{raw}/events.csv', all_varchar = true, header = true) AS e
  WHERE lower(trim(e.lead_id)) IN (SELECT lead_key FROM leads)
) TO '{out}/events.parquet' (FORMAT parquet);
"""


def _timed(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Run ``cmd`` as its own process: its wall time and its own peak RSS (MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=sys.stderr, stderr=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingest_bench: {' '.join(cmd[:3])} failed (exit code {os.waitstatus_to_exitcode(status)})")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0}


def _duckdb_child(raw: str, out: str, threads: int) -> None:
    import duckdb

    duckdb.connect().execute(QUERY.format(raw=raw, out=out, threads=threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events-per-lead", type=float, default=16.0, help="mean events per lead (16: ~20M at 1M)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="DuckDB's threads")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the export here (default: a temporary folder)")
    parser.add_argument("--duckdb-child", nargs=2, metavar=("RAW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        raw, out = args.duckdb_child
        _duckdb_child(raw, out, threads=args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="ingest_bench.") as tmp:
        project = args.workdir or Path(tmp)
        project.mkdir(parents=True, exist_ok=True)
        params = (REPO / "params.yaml").read_text(encoding="utf-8")
        params, leads = re.subn(r"(?m)^(  n_leads:) *\d+", rf"\g<1> {args.leads}", params)
        params, accounts = re.subn(r"(?m)^(  n_accounts:) *\d+", rf"\g<1> {max(args.leads // 4, 100)}", params)
        params, rate = re.subn(r"(?m)^(  events_per_lead:) *[\d.]+", rf"\g<1> {args.events_per_lead}", params)
        if (leads, accounts, rate) != (1, 1, 1):
            raise SystemExit("ingest_bench: params.yaml has no generate.n_leads / n_accounts / events_per_lead line")
        override = project / "params.yaml"
        override.write_text(params, encoding="utf-8")
        leadscore = str(BIN / "leadscore")
        raw = project / "data" / "raw"
        if not (raw / "events.csv").exists():  # a --workdir keeps its export: delete it to change the sizes
            print(f"ingest_bench: generating {args.leads:,} leads in {project}", file=sys.stderr)
            _timed([leadscore, "generate", "--params", str(override)], project)
        events = sum(1 for _ in (raw / "events.csv").open("rb")) - 1
        size = sum(p.stat().st_size for p in raw.glob("*.csv") if p.name != "contacts_flat.csv")
        ours = _timed([leadscore, "ingest", "--params", str(override)], project)
        out = project / "duckdb_out"
        out.mkdir(exist_ok=True)
        ref = _timed([sys.executable, __file__, "--threads", str(args.threads), "--duckdb-child", str(raw), str(out)],
                     project)
        report: dict[str, Any] = {
            "name": "ingest", "leads": args.leads, "events": events, "csv_mb": round(size / 2**20, 1),
            "ours_s": round(ours["wall_s"], 2), "duckdb_s": round(ref["wall_s"], 2),
            "ratio": round(ours["wall_s"] / ref["wall_s"], 3),
            "ours_peak_rss_mb": round(ours["peak_rss_mb"]), "duckdb_peak_rss_mb": round(ref["peak_rss_mb"]),
            "goal": "ratio <= 2.0 and ours_peak_rss_mb <= 2048",
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
