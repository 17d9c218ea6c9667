"""Wording a sales rep trusts, checked on every lead of the default run (scored twice, a week apart,
so every lead also has a change reason): no "1 days ago", no raw codes or case-folded CRM values,
no repeated prefixes, no nested or doubled parentheses, no unknown as a reason for, what would
raise the score only as activities a rep can cause and never by less than the declared threshold,
and the next step's rule in a sentence."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pandas as pd
import pytest

from pipeline.explain.reasons import Groups
from pipeline.reporting.board import render_board_html
from tests.conftest import DefaultScores

pytestmark = pytest.mark.slow

DAYS = re.compile(r"\b[01] days?\b")
# Codes no rep text may show: identifiers, seniority and region codes.
CODES = re.compile(r"_|\b(?:ic|c level|vp|hr|NA|LATAM|EU|MEA|APAC)\b")
REPEATED = re.compile(r"^(\w+)\b[^:]*: \1\b")  # "Budget met: Budget ..."


def _runs(scores: DefaultScores) -> Iterator[pd.DataFrame]:
    yield scores.first
    yield scores.second


def _items(frame: pd.DataFrame, column: str) -> Iterator[tuple[str, dict]]:
    for record_id, raw in zip(frame["record_id"], frame[column], strict=True):
        for item in json.loads(raw):
            yield record_id, item


def _reasons(frame: pd.DataFrame) -> Iterator[tuple[str, str]]:
    for side in ("for", "against"):
        for column in frame.filter(regex=f"^reason_{side}_\\d+$").columns:
            yield from ((r, t) for r, t in zip(frame["record_id"], frame[column], strict=True) if t)


def _texts(frame: pd.DataFrame) -> Iterator[tuple[str, str, str]]:
    """(column, record_id, text) of every rep-facing text of every lead."""
    yield from (("reason", r, t) for r, t in _reasons(frame))
    for column in ("what_would_raise", "next_step_rule", "change_reason"):
        yield from ((column, r, t) for r, t in zip(frame["record_id"], frame[column], strict=True) if t)
    for record_id, item in _items(frame, "checklist"):
        yield "checklist", record_id, f"{item['label']}: {item['reason'] or ''}"


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def test_days_are_today_yesterday_or_n_days_ago_everywhere(default_scores: DefaultScores) -> None:
    texts = [t for run in _runs(default_scores) for _, _, t in _texts(run)]
    assert any(t.endswith(": today") or "today" in t for t in texts)  # the words are used
    assert [t for t in texts if DAYS.search(t)] == []
    html = render_board_html(default_scores.second.assign(
        what_would_raise=default_scores.second["what_would_raise_detail"]))
    assert not DAYS.search(html)


def test_no_raw_codes_and_crm_values_in_their_own_casing(default_scores: DefaultScores) -> None:
    bad = [(c, r, t) for run in _runs(default_scores) for c, r, t in _texts(run) if CODES.search(t)]
    assert bad == []
    # CRM values as the CRM spells them: a level whose display form differs only in casing never shows folded.
    folded = {level for spec in default_scores.model.specs for level, shown in (spec.levels or {}).items()
              if shown != level and shown.casefold() == level.casefold() and level != "unknown"}
    assert {"brazil", "germany", "referral", "high"} <= folded
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(folded, key=len, reverse=True))) + r")\b")
    shown = [(r, t) for run in _runs(default_scores) for r, t in _reasons(run) if pattern.search(t)]
    shown += [(r, t) for run in _runs(default_scores) for c, r, t in _texts(run) if c == "checklist"
              and pattern.search(t.split(": ", 1)[1])]
    assert shown == []


def test_no_repeated_prefixes_and_no_nested_or_doubled_parentheses(default_scores: DefaultScores) -> None:
    texts = [(c, r, t) for run in _runs(default_scores) for c, r, t in _texts(run)]
    assert [x for x in texts if _depth(x[2]) > 1 or ") (" in x[2]] == []
    assert [x for x in texts if x[0] in ("reason", "checklist") and (REPEATED.search(x[2]) or x[2].count(": ") > 1)
            ] == []
    for run in _runs(default_scores):  # the checklist reason never repeats its criterion and status
        for _, item in _items(run, "checklist"):
            assert not (item["reason"] or "").startswith(item["label"])
    html = render_board_html(default_scores.first.assign(
        what_would_raise=default_scores.first["what_would_raise_detail"]))
    assert not re.search(r"(\w+) \((?:met|not met|unknown)\): \1", html)


def test_an_unknown_is_never_a_reason_for(default_scores: DefaultScores) -> None:
    unknown = re.compile(r"(?i)\bunknown\b|not known")
    for run in _runs(default_scores):
        assert [(r, i["text"]) for r, i in _items(run, "reasons_for") if unknown.search(i["text"])] == []
        assert [t for c in run.filter(regex=r"^reason_for_\d+$").columns for t in run[c] if unknown.search(t)] == []
    against = [i["text"] for _, i in _items(default_scores.first, "reasons_against")]
    assert any(unknown.search(t) for t in against)  # not knowing may still weigh against a lead


def test_what_would_raise_is_activities_a_rep_can_cause_above_the_threshold(default_scores: DefaultScores) -> None:
    least = default_scores.settings.score.raise_min_points
    groups = Groups.of(default_scores.model.specs)
    activities = {t for t, ok in zip(groups.titles, groups.actionable, strict=True) if ok}
    proposed = 0
    for run in _runs(default_scores):
        for record_id, item in _items(run, "what_would_raise_detail"):
            proposed += 1
            assert item["to"] - item["from"] >= least, (record_id, item)
            assert set(item["group"].split(" and ")) <= activities, (record_id, item)
            action, rest = item["text"].split(", as in a typical won deal, would raise the score from ")
            assert rest == f"{item['from']} to {item['to']}"
            assert not re.search(r"\d\.\d|score|criteria|BANT|engagement|Company|Industry", action), item
        scores = run.set_index("record_id")["score"]
        for record_id, text in zip(run["record_id"], run["what_would_raise"], strict=True):
            for line in filter(None, text.split("; ")):
                assert line.endswith(f"from {scores[record_id]} to {line.rsplit(' ', 1)[1]}")
    assert proposed > len(default_scores.first)  # most leads get one or two moves


def test_the_next_step_rule_is_a_sentence(default_scores: DefaultScores) -> None:
    run = default_scores.first
    words = {"sales_ready": "Sales-ready: ", "nurture": "Nurture: ", "disqualify": "Disqualify: "}
    for step, rule, score in zip(run["next_step"], run["next_step_rule"], run["score"], strict=True):
        assert rule.startswith(words[step] + f"the score is {score}")
        assert not re.search(r"[<>]=?", rule)
    low = run[run["next_step"] == "disqualify"]
    threshold = default_scores.settings.score.routing.disqualify_below_score
    assert (low["next_step_rule"] == "Disqualify: the score is " + low["score"].astype(str)
            + f", below the nurture threshold of {threshold}").all()
