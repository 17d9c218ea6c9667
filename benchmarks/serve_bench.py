"""Benchmark `leadscore serve`'s first page and the static board's size at 50,000 scored leads.

    python benchmarks/serve_bench.py                  # 50,000 leads
    python benchmarks/serve_bench.py --leads 200000

Prints one JSON line per measurement on stdout:

- ``serve_first_page``: a signed-in rep's first page (filters, sort by score, 50 rows, their feedback
  merged) over ``--leads`` scored leads, in-process through Starlette's test client, median of 15
  requests after a warm-up; against the same page over 500 leads in the same run. ratio =
  big_ms / small_ms: how much the page slows as the scores grow 100-fold (the issue's goal is a
  first page under 1 s; ``big_ms`` is that figure without the browser). Also the browser's own
  figure when the browser test has run (test-artifacts/serve_timing.json).
- ``static_board``: bytes of the static lead board the score stage writes for ``--leads`` leads
  (score.board_max_leads of them, paged 100 rows at a time), against the goal of 5 MB.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from starlette.testclient import TestClient  # noqa: E402

from pipeline.config import ScoreParams  # noqa: E402
from pipeline.reporting.board import render_board_html  # noqa: E402
from pipeline.serve.app import ServeConfig, create_app  # noqa: E402
from tests.serve.conftest import PASSWORDS, feedback_store, scores_frame, write_scores  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form"
    return found.group(1)


def first_page_ms(root: Path, leads: int, *, repeats: int = 15) -> float:
    scores = write_scores(scores_frame(leads), root / f"scores_{leads}.parquet")
    store = feedback_store(root / f"feedback_{leads}.db")
    client = TestClient(create_app(ServeConfig(scores=scores, history=None, sign_in=True, secret="bench"), store),
                        base_url="http://127.0.0.1")
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"csrf": token, "name": "ana", "password": PASSWORDS["ana"], "next": "/"})
    client.get("/")  # warm-up: the scores are read once, at start-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        page = client.get("/")
        times.append((time.perf_counter() - started) * 1000)
        assert page.status_code == 200 and "<tr data-record=" in page.text
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big, small = first_page_ms(root, args.leads), first_page_ms(root, 500)
        line = {"bench": "serve_first_page", "leads": args.leads, "big_ms": round(big, 1),
                "small_leads": 500, "small_ms": round(small, 1), "ratio": round(big / small, 2), "goal_ms": 1000}
        browser = REPO / "test-artifacts" / "serve_timing.json"
        if browser.exists():
            line["browser"] = json.loads(browser.read_text())
        print(json.dumps(line), flush=True)
        cap = ScoreParams().board_max_leads
        shown = scores_frame(args.leads).head(cap)
        html = render_board_html(shown.assign(what_would_raise=shown["what_would_raise_detail"]))
        size = len(html.encode("utf-8"))
        print(json.dumps({"bench": "static_board", "leads": args.leads, "shown": cap, "bytes": size,
                          "goal_bytes": 5_000_000, "ratio": round(size / 5_000_000, 3)}), flush=True)


if __name__ == "__main__":
    main()
