import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.reporting.board import board_leads, render_board, render_board_html

EVIL = "<script>alert(1)</script>"
BANNER = "Scores come from a model that did not pass the quality gates"
EXTERNAL = re.compile(  # an attribute, CSS url() or @import that points off the page
    r"""(?:\b(?:src|href|action|poster)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)\s*(?:https?:)?//""", re.IGNORECASE)


def _lead(record_id: str, score: int | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": record_id,
        "name": f"Company {record_id}",
        "probability": None if score is None else score / 100,
        "score": score,
        "grade": "A" if (score or 0) >= 70 else "C",
        "reasons_for": json.dumps([{"text": f"Viewed pricing {score} times", "contribution": 0.42},
                                   {"text": "Fits the ideal company size", "contribution": 0.21}]),
        "reasons_against": json.dumps([{"text": "No reply to the last two emails", "contribution": -0.3}]),
        "what_would_raise": json.dumps([{"text": f"A demo request would raise the score from {score} to 90",
                                         "from": score, "to": 90}]),
        "checklist": json.dumps([
            {"criterion": "budget", "label": "Budget", "status": "met", "reason": "Stated budget 120000"},
            {"criterion": "authority", "label": "Authority", "status": "not_met", "reason": "Contact is an intern"},
            {"criterion": "timing", "label": "Timing", "status": "unknown", "reason": "No timeline given"},
        ]),
        "next_step": "sales_ready" if (score or 0) >= 70 else "nurture",
        "next_step_rule": "Score at least 70 and budget met",
        "model_version": "20261122-abc123",
        "registry_version": "3",
        "model_status": "champion",
        "as_of": "2026-11-20",
        "scored_at": "2026-11-22T08:00:00+00:00",
    }
    return {**row, **extra}


def _scores(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


class _Rows(HTMLParser):
    """Text of every table-body cell, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _body_rows(html: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def _render(tmp_path: Path, scores: pd.DataFrame, **kwargs: Any) -> str:
    path = render_board(scores, tmp_path / "board" / "lead_board.html", **kwargs)
    assert path == tmp_path / "board" / "lead_board.html"
    return path.read_text(encoding="utf-8")


def test_board_is_written_atomically_and_self_contained(tmp_path: Path) -> None:
    html = _render(tmp_path, _scores(_lead("L1", 80), _lead("L2", 40)), notes=["Export of 22 Nov"])
    assert html.startswith("<!DOCTYPE html>")
    assert [p.name for p in (tmp_path / "board").iterdir()] == ["lead_board.html"]  # no temp file left behind
    assert not EXTERNAL.search(html)
    assert "<link" not in html.lower()
    assert "Content-Security-Policy" in html
    assert "Export of 22 Nov" in html


def test_external_url_pattern_catches_what_it_should() -> None:
    for bad in ('<img src="https://x.io/a.png">', "<a href='http://x.io'>", "url(https://x.io/f.woff)",
                'src="//x.io/a.js"', "@import 'http://x.io/a.css'"):
        assert EXTERNAL.search(bad), bad
    assert not EXTERNAL.search('<a href="#lead-1">')


def test_malicious_name_is_escaped(tmp_path: Path) -> None:
    html = _render(tmp_path, _scores(_lead("L1", 80, name=EVIL), _lead("L2", 40)))
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.lower().count("<script") == 1  # only the board's own sorting script
    assert _body_rows(html)[0][0] == EVIL  # and a reader sees the name literally


def test_quotes_and_ampersands_in_reasons_are_escaped(tmp_path: Path) -> None:
    reasons = json.dumps([{"text": 'Said "yes" & asked for <b>terms</b>', "contribution": 0.5}])
    rule = "Grade A & budget \"met\" -> 'sales ready'"
    html = _render(tmp_path, _scores(_lead("L1", 80, reasons_for=reasons, next_step_rule=rule)))
    assert "Said &#34;yes&#34; &amp; asked for &lt;b&gt;terms&lt;/b&gt;" in html
    assert "Grade A &amp; budget &#34;met&#34; -&gt; &#39;sales ready&#39;" in html
    assert "<b>terms</b>" not in html


def test_rows_are_in_score_descending_order(tmp_path: Path) -> None:
    scores = _scores(_lead("L1", 41), _lead("L2", 88), _lead("L3", 7), _lead("L4", 63), _lead("L5", None))
    rows = _body_rows(_render(tmp_path, scores))
    assert [row[1] for row in rows] == ["88", "63", "41", "7", "–"]  # unscored last
    assert [row[0] for row in rows][:4] == ["Company L2", "Company L4", "Company L1", "Company L3"]
    assert rows[0][4] == "Viewed pricing 88 times"  # top reason is the first reason for


def test_headers_are_sortable(tmp_path: Path) -> None:
    html = _render(tmp_path, _scores(_lead("L1", 41)))
    for column in ("lead", "score", "grade", "next_step", "top_reason", "model_status"):
        assert f'data-sort="{column}"' in html
    assert re.search(r'data-sort="score" data-type="number" aria-sort="descending"', html)
    assert ".innerHTML" not in html


def test_card_shows_reasons_checklist_and_provenance(tmp_path: Path) -> None:
    html = _render(tmp_path, _scores(_lead("L1", 80, registry_version=None)))
    for text in ("Viewed pricing 80 times", "No reply to the last two emails", "Stated budget 120000",
                 "A demo request would raise the score from 80 to 90", "Score at least 70 and budget met",
                 "80%", "20261122-abc123", "2026-11-20", "2026-11-22T08:00:00+00:00", "Sales ready"):
        assert text in html, text
    assert re.findall(r'class="fill" style="width: ([\d.]+)%"', html) == ["100.0", "50.0", "71.4"]
    marks = re.findall(r'<li class="check-(\w+)"><span class="mark" title="[^"]+">(.)</span>', html)
    assert marks == [("met", "✓"), ("not_met", "✗"), ("unknown", "?")]


@pytest.mark.parametrize(("statuses", "banner"),
                         [(["champion", "champion"], False), (["champion", "unpromoted"], True)])
def test_unpromoted_banner_only_when_a_row_is_unpromoted(tmp_path: Path, statuses: list[str], banner: bool) -> None:
    scores = _scores(*(_lead(f"L{i}", 50 + i, model_status=s) for i, s in enumerate(statuses)))
    assert (BANNER in _render(tmp_path, scores)) is banner


@pytest.mark.parametrize("scores", [pd.DataFrame(), pd.DataFrame(columns=["record_id", "score", "name"])])
def test_empty_frame_says_there_is_nothing_to_score(tmp_path: Path, scores: pd.DataFrame) -> None:
    html = _render(tmp_path, scores)
    assert "No open leads to score" in html
    assert "<table" not in html
    assert BANNER not in html


def test_missing_columns_and_bad_json_still_render(tmp_path: Path) -> None:
    scores = pd.DataFrame({"record_id": ["R1", "R2"], "score": [12.0, float("nan")],
                           "reasons_for": ["not json", None], "checklist": [None, "[1, 2]"]})
    rows = _body_rows(_render(tmp_path, scores))
    assert [row[:2] for row in rows] == [["R1", "12"], ["R2", "–"]]  # name falls back to the record id


def test_input_frame_is_not_changed() -> None:
    scores = _scores(_lead("L1", 41), _lead("L2", 88))
    before = scores.copy()
    leads = board_leads(scores)
    pd.testing.assert_frame_equal(scores, before)
    assert [lead.anchor for lead in leads] == ["lead-1", "lead-2"]


def test_the_verdict_on_a_model_no_better_than_chance_is_worded_once_everywhere(tmp_path: Path) -> None:
    from pipeline.modeling.metrics import model_verdict, verdict

    figures = {"roc_auc": 0.479, "roc_auc_ci_low": 0.41, "roc_auc_ci_high": 0.55, "n_test": 120, "base_rate": 0.3,
               "better_than_chance": False}
    found = model_verdict(figures, confidence=0.95, promoted=False)
    assert found.kind == "chance" and "do not use its scores to prioritise leads" in found.advice
    assert "do not use its scores to prioritise leads" in verdict(figures, confidence=0.95)  # the evaluate log
    scores = _scores(_lead("L1", 40), _lead("L2", 20)).assign(model_status="unpromoted")
    html = render_board_html(scores, verdict=found)
    assert found.advice in html and "rough guide" not in html
    # Not judged here (no holdout figures): an unpromoted model is a rough guide.
    assert model_verdict(None, promoted=False).advice in render_board_html(scores)
    assert "unpromoted-warning" not in render_board_html(scores.assign(model_status="champion"))
