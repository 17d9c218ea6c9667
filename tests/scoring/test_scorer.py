"""The scorer: every row kept in order, worded reasons, and what would raise a score checked by re-scoring."""

import json
import re
from pathlib import Path

from pipeline.explain.reasons import Groups
from pipeline.modeling.model import load_model
from pipeline.modeling.train import save_model
from pipeline.scoring.raising import activities, score_of, shortfall, with_events
from tests.conftest import PARAMS_SHA256, scorer_for


def test_score_frame_keeps_every_row_in_order_with_worded_reasons(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    rows = small.features.matrix.sample(200, random_state=0)
    out = scorer_for(model, small.settings).score(rows, scored_at="2026-01-01T00:00:00Z", detail=True)
    assert out["record_id"].tolist() == rows["record_id"].tolist()
    assert out["score"].between(0, 100).all()
    assert out["probability"].between(0, 1).all()
    assert set(out["grade"]) <= {"A", "B", "C", "D"}
    assert set(out["next_step"]) <= {"sales_ready", "nurture", "disqualify"}
    worded = [json.loads(f) + json.loads(a) for f, a in zip(out["reasons_for"], out["reasons_against"], strict=True)]
    assert all(len(w) >= 1 for w in worded)  # every lead has at least one worded reason
    texts = [item["text"] for w in worded for item in w] + [t for c in out.filter(like="what_would_raise") for t in
                                                             out[c] if isinstance(t, str)]
    snake = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
    names = {s.name for s in model.specs}
    assert not [t for t in texts if snake.search(t) or any(n in t for n in names if "_" in n)]


def test_what_would_raise_equals_a_real_rescore_of_the_modified_lead(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    rows = small.features.matrix[small.features.matrix["outcome"] == "open"].head(300)
    scorer = scorer_for(model, small.settings)
    out = scorer.score(rows, scored_at="2026-01-01T00:00:00Z", detail=True)
    groups = Groups.of(model.specs)
    acts = {groups.titles[a.group]: a for a in activities(model, groups)}
    least = small.settings.score.raise_min_points
    checked = 0
    for i, detail in enumerate(out["what_would_raise_detail"]):
        x = model.matrix(rows.iloc[[i]])
        for item in json.loads(detail):
            assert item["from"] == score_of(model, x)[0] == out["score"].iloc[i]
            moves = [acts[title] for title in item["group"].split(" and ")]  # activities only, never firmographics
            # The same events, added by hand: as many as the lead lacks against a typical won deal.
            changed = with_events(x, [(a, shortfall(x, a, model.meta.typical_won)) for a in moves])
            assert score_of(model, changed)[0] == item["to"] >= item["from"] + least
            checked += 1
    assert checked > 0
