"""The feedback database on SQLite: round trips, validation, passwords, the schema version, and
where the database is (env > param > path). PostgreSQL too, when LEADSCORE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.config import FeedbackParams, parse_settings
from pipeline.errors import ConfigError, FeedbackError, LeadscoreError
from pipeline.feedback import REP_COLUMNS, FeedbackStore, feedback_url
from pipeline.feedback.passwords import hash_password, verify_password
from pipeline.feedback.store import NOTE_MAX, SCHEMA_VERSION, URL_ENV
from tests.feedback.conftest import REASONS

VERDICT: dict[str, Any] = {"author": "ana", "verdict": "disagree", "reason": "not a fit", "score": 81, "grade": "A",
                           "next_step": "sales_ready", "model_version": "lgbm-abc"}
OVERRIDE: dict[str, Any] = {"author": "ana", "next_step": "nurture", "model_next_step": "sales_ready",
                            "model_grade": "A"}


def test_round_trip_of_verdicts_overrides_and_contacts(store: FeedbackStore, clock) -> None:
    first = store.add_verdict("D1", **{**VERDICT, "verdict": "agree", "reason": "strong fit"}, note="good call")
    clock.tick(hours=2)
    second = store.add_verdict("D1", **VERDICT, note="they went with a rival")
    store.set_override("D1", **OVERRIDE, note="wait for Q3")
    clock.tick(days=1)
    store.log_contact("D1", author="maria", note="left a voicemail")
    store.log_contact("D2", author="ana")
    lead = store.for_lead("D1")
    assert second > first and lead.verdict is not None and lead.verdict.id == second
    assert [v.verdict for v in lead.verdicts] == ["disagree", "agree"]  # newest first
    assert (lead.verdict.score, lead.verdict.grade, lead.verdict.next_step, lead.verdict.model_version) == (
        81, "A", "sales_ready", "lgbm-abc")
    assert lead.verdict.created_at.isoformat() == "2026-01-05T11:30:00+00:00"
    assert lead.override is not None and (lead.override.next_step, lead.override.grade) == ("nurture", None)
    assert (lead.override.model_next_step, lead.override.model_grade, lead.override.note) == ("sales_ready", "A",
                                                                                            "wait for Q3")
    assert [c.note for c in lead.contacts] == ["left a voicemail"]
    table = store.table()
    assert list(table.columns) == ["record_id", *REP_COLUMNS] and list(table["record_id"]) == ["D1", "D2"]
    d1, d2 = table.iloc[0], table.iloc[1]
    assert (d1["rep_verdict"], d1["rep_reason"], d1["rep_note"], d1["rep_verdict_by"]) == (
        "disagree", "not a fit", "they went with a rival", "ana")
    assert (d1["rep_verdict_at"], d1["override_at"], d1["last_contacted_at"]) == (
        "2026-01-05T11:30:00Z", "2026-01-05T11:30:00Z", "2026-01-06T11:30:00Z")
    assert (d1["rep_next_step"], d1["rep_grade"], d1["override_model_next_step"], d1["contacts"]) == (
        "nurture", None, "sales_ready", 1)
    assert d2["rep_verdict"] is None and d2["contacts"] == 1
    assert list(store.table(["D2"])["record_id"]) == ["D2"] and store.table(["nope"]).empty
    empty = store.for_lead("D9")
    assert empty.verdict is None and empty.override is None and empty.contacts == [] == empty.verdicts


def test_a_second_override_replaces_the_first_and_clearing_is_explicit(store: FeedbackStore, clock) -> None:
    store.set_override("D1", **OVERRIDE)
    clock.tick(days=3)
    store.set_override("D1", author="ana", grade="B", model_next_step="nurture", model_grade="C")
    found = store.for_lead("D1").override
    assert found is not None and (found.next_step, found.grade, found.model_grade) == (None, "B", "C")
    assert store.clear_override("D1", author="ana") and store.for_lead("D1").override is None
    assert not store.clear_override("D1", author="ana")
    assert store.table().empty


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> FeedbackStore:
    """One store for the tests that write nothing (each failed write must leave it empty)."""
    store = FeedbackStore.open(f"sqlite:///{tmp_path_factory.mktemp('fb') / 'f.db'}", reasons=REASONS)
    store.add_user("ana", password="ana-secret-1", owner="Ana Lima")
    return store


@pytest.mark.parametrize(("call", "changes", "field"), [
    ("verdict", {"verdict": "maybe"}, "verdict"),
    ("verdict", {"reason": "because I said so"}, "reason"),
    ("verdict", {"reason": "strong fit"}, "reason"),          # an agree reason given with disagree
    ("verdict", {"reason": ""}, "reason"),
    ("verdict", {"score": 101}, "score"),
    ("verdict", {"score": 50.5}, "score"),
    ("verdict", {"grade": "E"}, "grade"),
    ("verdict", {"next_step": "call now"}, "next_step"),
    ("verdict", {"note": "x" * (NOTE_MAX + 1)}, "note"),
    ("verdict", {"author": "mallory"}, "author"),
    ("verdict", {"record_id": ""}, "record_id"),
    ("override", {"next_step": None}, "next_step, grade"),
    ("override", {"grade": "Z"}, "grade"),
    ("override", {"model_next_step": "later"}, "model_next_step"),
    ("contact", {"author": ""}, "author"),
    ("contact", {"note": "bad\x00byte"}, "note"),
])
def test_a_bad_value_raises_a_user_facing_error_naming_the_field(shared: FeedbackStore, call: str,
                                                                 changes: dict[str, Any], field: str) -> None:
    store = shared
    with pytest.raises(FeedbackError, match=f"^{field}: ") as raised:
        if call == "verdict":
            values = {"record_id": "D1", **VERDICT, **changes}
            store.add_verdict(values.pop("record_id"), **values)
        elif call == "override":
            store.set_override("D1", **{**OVERRIDE, **changes})
        else:
            store.log_contact("D1", **{"author": "ana", **changes})
    assert isinstance(raised.value, LeadscoreError) and isinstance(raised.value, ValueError)
    assert store.table().empty  # nothing half-written


def test_reasons_match_whatever_the_case_and_are_stored_as_declared(store: FeedbackStore) -> None:
    store.add_verdict("D1", **{**VERDICT, "reason": "  Not A Fit "})
    assert store.table().loc[0, "rep_reason"] == "not a fit"
    assert store.reasons == REASONS


def test_any_author_before_the_first_user_then_only_users(make_store) -> None:
    store = make_store("open.db", users=False)
    store.log_contact("D1", author="laptop-user")
    store.add_user("ana", password="ana-secret-1", owner="Ana Lima")
    with pytest.raises(FeedbackError, match="author: 'laptop-user' is not a user"):
        store.log_contact("D1", author="laptop-user")


def test_the_real_cost_is_scrypt_n_2_14(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    from pipeline.feedback import passwords

    stored = passwords.hash_password("a real password")
    assert stored.split("$")[:4] == ["scrypt", str(2 ** 14), "8", "1"] and verify_password("a real password", stored)


def test_passwords_are_hashed_salted_and_checked(store: FeedbackStore, tmp_path: Path) -> None:
    assert store.check_password("ana", "ana-secret-1") == store.user("ana")
    assert store.check_password("ana", "ana-secret-2") is None
    assert store.check_password("nobody", "ana-secret-1") is None
    assert store.check_password("", "") is None
    user = store.user("maria")
    assert user is not None and (user.owner, user.role) == ("Maria Rossi", "manager")
    raw = sqlite3.connect(tmp_path / "feedback.db").execute("SELECT name, password_hash FROM users").fetchall()
    hashes = dict(raw)
    assert all(h.startswith("scrypt$") for h in hashes.values())
    assert "ana-secret-1" not in (tmp_path / "feedback.db").read_bytes().decode("latin-1")
    one, two = hash_password("same-password"), hash_password("same-password")
    assert one.split("$")[1] == "256"  # this module's cheap cost (conftest): the cost travels with the hash
    assert one != two and verify_password("same-password", one) and verify_password("same-password", two)
    assert not verify_password("same-password", "garbage") and not verify_password("x", None)
    assert [u.name for u in store.users()] == ["ana", "maria"]


@pytest.mark.parametrize(("name", "changes", "field"), [
    ("ana", {}, "name"),                                  # already exists
    ("bad name", {}, "name"),
    ("bob", {"password": "short"}, "password"),
    ("bob", {"owner": " "}, "owner"),
    ("bob", {"role": "admin"}, "role"),
])
def test_bad_users_are_refused(shared: FeedbackStore, name: str, changes: dict[str, Any], field: str) -> None:
    store = shared
    with pytest.raises(FeedbackError, match=f"^{field}: "):
        store.add_user(name, **{"password": "long-enough-1", "owner": "Bob", **changes})


def test_reopening_keeps_every_row_and_a_newer_schema_is_refused(make_store, tmp_path: Path) -> None:
    store = make_store()
    store.add_verdict("D1", **VERDICT)
    store.close()
    again = make_store()
    assert again.schema_version == SCHEMA_VERSION and len(again.table()) == 1 and again.has_users()
    with again.engine.begin() as conn:
        conn.execute(sa.text("UPDATE leadscore_meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(FeedbackError, match="schema version 99, newer"):
        FeedbackStore.open(f"sqlite:///{tmp_path / 'feedback.db'}", reasons=REASONS)


def test_existing_never_creates_the_database(tmp_path: Path, make_store) -> None:
    params = FeedbackParams(reasons=REASONS)
    db = tmp_path / "sub" / "feedback.db"
    assert FeedbackStore.existing(params, db=db) is None and not db.parent.exists()
    sqlite3.connect(tmp_path / "other.db").close()  # a file, but no feedback tables
    assert FeedbackStore.existing(params, db=tmp_path / "other.db") is None
    make_store("feedback.db").add_verdict("D1", **VERDICT)
    found = FeedbackStore.existing(params, db=tmp_path / "feedback.db")
    assert found is not None and len(found.table()) == 1


def test_the_url_is_the_env_then_the_param_then_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    settings = parse_settings({"paths": {"feedback_db": "fb/x.db"}})
    assert settings.paths.feedback_db == Path("fb/x.db") and parse_settings({}).paths.feedback_db == Path(
        "data/feedback/feedback.db")
    assert feedback_url(settings.feedback, db=settings.paths.feedback_db) == "sqlite:///fb/x.db"
    with_param = parse_settings({"feedback": {"url": "sqlite:////srv/fb.db"}})
    assert feedback_url(with_param.feedback, db=Path("ignored")) == "sqlite:////srv/fb.db"
    monkeypatch.setenv(URL_ENV, "postgresql+psycopg://rep@db/leadscore")
    assert feedback_url(with_param.feedback, db=Path("ignored")) == "postgresql+psycopg://rep@db/leadscore"


@pytest.mark.parametrize(("section", "message"), [
    ({"url": "feedback.db"}, "feedback.url: a database URL"),
    ({"reasons": {"agree": ["a", "A"]}}, "feedback.reasons.agree: a reason is listed twice"),
    ({"reasons": {"disagree": []}}, "feedback.reasons.disagree"),
    ({"reason": {}}, "feedback.reason: unknown key (did you mean 'reasons'?)"),
    ({"min_leads": 0}, "feedback.min_leads"),
    ({"disqualified_as_lost": "perhaps"}, "feedback.disqualified_as_lost"),
    ({"disqualified_as_lost": True}, "feedback.disqualified_as_lost: true is not implemented yet"),
])
def test_the_feedback_section_is_validated_naming_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_settings({"feedback": section})


def test_an_in_memory_database_works_for_quick_use() -> None:
    store = FeedbackStore.open("sqlite://", reasons=REASONS)
    store.log_contact("D1", author="someone")
    assert store.table().loc[0, "contacts"] == 1


@pytest.mark.skipif(not os.environ.get("LEADSCORE_TEST_POSTGRES_URL"), reason="LEADSCORE_TEST_POSTGRES_URL not set")
def test_postgresql_round_trip() -> None:
    url = os.environ["LEADSCORE_TEST_POSTGRES_URL"]
    schema = f"leadscore_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        store = FeedbackStore.open(scoped.render_as_string(hide_password=False), reasons=REASONS)
        store.add_user("ana", password="ana-secret-1", owner="Ana Lima")
        store.add_verdict("D1", **VERDICT)
        store.set_override("D1", **OVERRIDE)
        assert store.check_password("ana", "ana-secret-1") is not None
        row = store.table().iloc[0]
        assert (row["rep_verdict"], row["rep_next_step"], row["override_model_next_step"]) == (
            "disagree", "nurture", "sales_ready")
        store.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
