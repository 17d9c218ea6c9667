"""The who-was-right report where people read it: evaluation.json's section from the evaluate stage's
helper, the model card's section, and `leadscore users`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import parse_settings
from pipeline.feedback import FeedbackStore, feedback_notes, who_was_right
from pipeline.modeling.metrics import Evaluation
from pipeline.reporting.model_card import render_model_card
from pipeline.stages.evaluate import feedback_report
from tests.conftest import Prepared, make_settings


def _card(**extra) -> str:
    return render_model_card({"model_version": "lgbm-test", **extra})


def test_the_model_card_says_plainly_when_there_is_no_feedback() -> None:
    report = who_was_right(pd.DataFrame(columns=["record_id", "outcome", "as_of"]), None)
    card = _card(feedback=report, feedback_notes=feedback_notes(report))
    assert "## Rep feedback: who was right" in card and "- No rep feedback yet" in card and "| reps" not in card
    assert "Rep feedback" not in _card()  # an old card with no such key: no section


def test_the_evaluate_stage_reports_feedback_on_this_exports_closed_deals(small: Prepared, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, feedback={"min_leads": 3})
    matrix = small.features.matrix
    closed = matrix[matrix["outcome"] != "open"].sort_values("as_of")
    test = closed.tail(200)
    p = np.clip(np.linspace(0.05, 0.95, len(test)), 0, 1)
    evaluation = Evaluation(metrics={}, curves={}, y=test["label"].to_numpy(dtype=int), p=p)
    assert feedback_report(settings, small.features, test, evaluation)["status"] == "no_feedback"
    assert not settings.paths.feedback_db.exists()  # read, never created
    store = FeedbackStore.from_settings(settings)
    picked = closed.head(4)
    for record_id in picked["record_id"]:  # given now: after these deals' decision dates
        store.add_verdict(record_id, author="me", verdict="disagree", reason="no budget", score=70, grade="B",
                          next_step="sales_ready", model_version="m")
    report = feedback_report(settings, small.features, test, evaluation)
    assert report["status"] == "none_closed"  # they closed before the feedback: it cannot count
    later = small.features.matrix.assign(as_of=pd.Timestamp("2099-01-01"))  # a later export: they close after
    report = feedback_report(settings, small.features.__class__(matrix=later, specs=small.features.specs), test,
                             evaluation)
    won = int(picked["label"].sum())
    assert report["status"] == "ok" and report["verdicts"]["disagree"]["leads"] == 4
    assert report["verdicts"]["disagree"]["won"] == won
    assert set(report["overrides"]["model_win_rates"]["next_step"]) == {"sales_ready", "nurture", "disqualify"}
    card = _card(feedback=report, feedback_notes=feedback_notes(report))
    assert f"| reps disagreed | 4 | {won} |" in card


def test_users_add_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  feedback_db: {tmp_path / 'fb' / 'feedback.db'}\n")
    monkeypatch.delenv("LEADSCORE_FEEDBACK_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "ana", "--owner", "Ana Lima", "--password-stdin", "-q", "--params", str(params)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "bob", "--owner", "Bob", "--password-stdin", "-q", "--params", str(params)]) == 3
    answers = iter(["pw-one-1234", "pw-two-1234"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "maria", "--owner", "Maria", "--manager", "-q", "--params", str(params)]) == 2
    assert main(["users", "list", "-q", "--params", str(params)]) == 0
    out = capsys.readouterr()
    assert "added rep ana (CRM owner 'Ana Lima')" in out.out and "a-long-password" not in out.out + out.err
    assert "password: between 8" in out.err and "the two passwords differ" in out.err
    assert out.out.strip().splitlines()[-1].startswith("ana\trep\tAna Lima\t")
    store = FeedbackStore.from_settings(parse_settings({"paths": {"feedback_db": str(tmp_path / "fb/feedback.db")}}))
    assert store.check_password("ana", "a-long-password") is not None and store.user("maria") is None
