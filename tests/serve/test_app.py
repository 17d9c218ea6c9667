"""`leadscore serve` through Starlette's test client: sign-in, scope, filters, paging, CSRF, escaping,
and feedback written to the database."""

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipeline.errors import ConfigError
from pipeline.serve.app import ServeConfig, create_app
from pipeline.serve.auth import is_loopback
from pipeline.serve.leads import LeadIndex, Query
from tests.serve.conftest import EVIL, PASSWORDS, scores_frame, write_scores

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form"
    return found.group(1)


def _client(tmp_path: Path, store, *, n: int = 300, sign_in: bool = True) -> tuple[TestClient, Path]:
    scores = write_scores(scores_frame(n), tmp_path / "scores" / "scores.parquet")
    app = create_app(ServeConfig(scores=scores, history=None, sign_in=sign_in, secret="test-secret"), store)
    return TestClient(app, base_url="http://127.0.0.1"), scores


def _sign_in(client: TestClient, name: str) -> None:
    page = client.get("/login")
    token = _csrf(page.text)
    answer = client.post("/login", data={"csrf": token, "name": name, "password": PASSWORDS[name], "next": "/"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def _token(client: TestClient, path: str) -> str:
    return _csrf(client.get(path).text)


def test_loopback_is_told_apart_from_every_other_address() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "::", "example.com", ""))


def test_sign_in_is_required_and_a_wrong_password_refused(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store)
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/login")
    token = _token(client, "/login")
    wrong = client.post("/login", data={"csrf": token, "name": "ana", "password": "nope"})
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    assert "ana-secret" not in wrong.text


def test_a_rep_sees_only_their_own_leads_and_a_manager_every_lead(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store)
    _sign_in(client, "ana")
    page = client.get("/")
    owners = set(re.findall(r"<td>(Ana Lima|Ben Okafor|Chloé Martin)</td>", page.text))
    assert owners == {"Ana Lima"}
    assert "100 leads" in page.text  # 300 leads, one in three is Ana's
    manager = TestClient(client.app, base_url="http://127.0.0.1")
    _sign_in(manager, "maria")
    assert "300 leads" in manager.get("/").text
    assert "300 leads" not in client.get("/?owner=Ben+Okafor").text  # a rep cannot widen the scope
    assert "0 leads" in client.get("/?owner=Ben+Okafor").text


def test_company_names_are_escaped_and_no_script_is_served(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store)
    _sign_in(client, "ana")
    page = client.get("/")
    assert EVIL not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/app.css").status_code == 200


def test_filters_search_sort_and_paging(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store, n=3000)
    _sign_in(client, "maria")
    page = client.get("/?grade=A&sort=score_asc")
    grades = re.findall(r'class="grade grade-([A-D])"', page.text)
    assert grades and set(grades) == {"A"}
    scores = [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', page.text)]
    assert scores == sorted(scores)
    assert "page 1 of" in page.text and len(re.findall(r"<tr data-record=", page.text)) == 50
    found = client.get("/?q=company+1234+ltd")
    assert re.findall(r"<tr data-record=\"([^\"]+)\"", found.text) == ["D0001234"]
    assert client.get("/?grade=Z").status_code == 400
    assert client.get("/?page=abc").status_code == 400
    last = client.get("/?page=9999")  # past the end: the last page, not an error
    assert last.status_code == 200 and "page 60 of 60" in last.text


def test_index_filters_changed_leads_and_overrides(tmp_path: Path) -> None:
    frame = scores_frame(200)
    index = LeadIndex(write_scores(frame, tmp_path / "s.parquet"))
    changed = index.search(Query.of({"changed": "1"}), owner=None, page_size=1000)
    assert changed.total == int((frame["score_change"].fillna(0) != 0).sum()) > 0
    first = frame["record_id"].iloc[-1]  # the lowest score: disqualify or nurture by the model
    import pandas as pd
    overrides = pd.DataFrame({"record_id": [first], "rep_next_step": ["sales_ready"], "rep_grade": ["A"]})
    ready = index.search(Query.of({"next_step": "sales_ready"}), owner=None, overrides=overrides, page_size=1000)
    assert first in {r["record_id"] for r in ready.rows}
    assert ready.total == int((frame["next_step"] == "sales_ready").sum()) + 1


def test_feedback_is_stored_csrf_checked_and_scoped(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store)
    _sign_in(client, "ana")
    lead = "D0000000"  # Ana's, named EVIL
    token = _token(client, f"/lead?id={lead}")
    no_token = client.post("/lead/verdict", data={"record_id": lead, "verdict": "disagree",
                                                  "reason_disagree": "not a fit"})
    assert no_token.status_code == 403
    saved = client.post("/lead/verdict", data={"csrf": token, "record_id": lead, "verdict": "disagree",
                                               "reason_disagree": "not a fit", "note": "<b>cold</b> lead"})
    assert saved.status_code == 200 and "Saved" in saved.text
    assert "&lt;b&gt;cold&lt;/b&gt;" in saved.text and "<b>cold</b>" not in saved.text
    bad = client.post("/lead/verdict", data={"csrf": token, "record_id": lead, "verdict": "disagree",
                                             "reason_disagree": "because I said so"})
    assert bad.status_code == 200 and "flash-error" in bad.text
    client.post("/lead/override", data={"csrf": token, "record_id": lead, "next_step": "nurture", "note": "wait"})
    table = store.table([lead]).set_index("record_id")
    assert table.loc[lead, "rep_verdict"] == "disagree" and table.loc[lead, "rep_reason"] == "not a fit"
    assert table.loc[lead, "rep_next_step"] == "nurture"
    assert table.loc[lead, "override_model_next_step"] == "sales_ready"

    ben = TestClient(client.app, base_url="http://127.0.0.1")
    _sign_in(ben, "ben")
    assert ben.get(f"/lead?id={lead}").status_code == 404
    ben_token = _token(ben, "/")
    tried = ben.post("/lead/override", data={"csrf": ben_token, "record_id": lead, "next_step": "disqualify"})
    assert tried.status_code == 404
    assert store.table([lead]).set_index("record_id").loc[lead, "rep_next_step"] == "nurture"


def test_sign_in_redirects_stay_on_this_app(tmp_path: Path, store) -> None:
    client, _ = _client(tmp_path, store)
    token = _token(client, "/login")
    answer = client.post("/login", data={"csrf": token, "name": "ana", "password": PASSWORDS["ana"],
                                         "next": "//evil.example/"}, follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_binding_beyond_loopback_needs_users(tmp_path: Path) -> None:
    from pipeline.config import parse_settings
    from pipeline.feedback import FeedbackStore
    from pipeline.serve.run import serve_config

    settings = parse_settings({})
    empty = FeedbackStore.open(f"sqlite:///{tmp_path / 'empty.db'}", reasons={"agree": ["a"], "disagree": ["b"]})
    with pytest.raises(ConfigError, match="users add"):
        serve_config(settings, host="0.0.0.0", store=empty)
    assert not serve_config(settings, host="127.0.0.1", store=empty).sign_in


def test_the_card_shows_the_lead_and_its_last_runs(tmp_path: Path, store) -> None:
    import pandas as pd

    scores = write_scores(scores_frame(30), tmp_path / "scores.parquet")
    runs = pd.DataFrame({"scored_at": ["2025-12-30T00:00:00Z", "2025-12-31T00:00:00Z"], "score": [80, 99],
                         "grade": ["A", "A"], "score_change": [None, 19], "trend": ["new", "improving"],
                         "model_version": ["lgbm-test", "lgbm-test"]})
    asked: list[tuple[str, int]] = []

    def history(record_id: str, last: int) -> pd.DataFrame:
        asked.append((record_id, last))
        return runs

    app = create_app(ServeConfig(scores=scores, history=history, sign_in=False, secret="s"), store)
    card = TestClient(app, base_url="http://127.0.0.1").get("/lead?id=D0000000")
    assert card.status_code == 200 and asked == [("D0000000", 5)]
    assert 'id="history"' in card.text and "+19" in card.text and "improving" in card.text
    assert "Contact 0" in card.text and "mailto:c0@example.com" in card.text
    assert 'href="https://crm.example.com/deals/D0000000"' in card.text
