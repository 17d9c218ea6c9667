"""Ingest through a source mapping: parsing helpers, flat and relational exports, quarantine."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.config import SourceParams, parse_settings
from pipeline.data.ingest import IngestResult, ingest
from pipeline.data.parsing import clean_text, fold_event_type, parse_boolean, parse_number

HEADER = "id,stage,closed,created,industry,employees,demo_booked,title"
ROWS = [
    "1,Won,2024-03-01,2024-01-05,Software,\"1,200\",yes,VP Sales",
    "2,Lost,2024-04-01,2024-02-01,Retail,$3.5k,no,Intern",
    "3,Open,,2024-05-01, software ,80,,CEO",
]


def flat_source(tmp_path: Path, **primary: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "file": "export.csv",
        "id": "id",
        "outcome": {"column": "stage", "won": ["Won"], "lost": ["Lost"], "open": ["Open"]},
        "decision_date": {"column": "closed"},
        "created_date": {"column": "created"},
        "columns": {
            "industry": {"column": "industry", "aliases": {"sofware": "software"}},
            "employees": {"column": "employees", "min": 0},
            "demo_booked": {"column": "demo_booked", "kind": "boolean", "role": "intent"},
            "job_title": {"column": "title"},
        },
    }
    spec.update(primary)
    return {"kind": "flat", "dir": str(tmp_path), "primary": spec}


def run_flat(tmp_path: Path, rows: list[str], *, header: str = HEADER, write_encoding: str = "utf-8",
             raw: bytes | None = None, **primary: Any) -> IngestResult:
    """Write ``rows`` under ``header`` as export.csv and ingest it; ``primary`` overrides mapping keys."""
    path = tmp_path / "export.csv"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join([header, *rows]) + "\n", encoding=write_encoding)
    source = parse_settings({"source": flat_source(tmp_path, **primary)}).source
    return ingest(source)


@pytest.mark.parametrize(("text", "expected"), [
    ("1,200", 1200.0), ("$3.5M", 3.5e6), ("2k", 2000.0), ("-5", -5.0), (" 42 ", 42.0), ("1.5B", 1.5e9),
])
def test_parse_number_reads_crm_formats(text: str, expected: float) -> None:
    assert parse_number(pd.Series([text]))[0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["n/a", "", "lots", "-", "12 apples"])
def test_parse_number_gives_missing_for_non_numbers(text: str) -> None:
    assert pd.isna(parse_number(pd.Series([text]))[0])


def test_parse_boolean() -> None:
    out = parse_boolean(pd.Series(["Yes", "no", "TRUE", "0", "maybe", None]))
    assert out.tolist()[:4] == [1.0, 0.0, 1.0, 0.0]
    assert out.isna().tolist()[4:] == [True, True]


def test_clean_text_trims_and_treats_placeholders_as_missing() -> None:
    out = clean_text(pd.Series(["  VP   of Sales ", "N/A", "", "Select", "ok"]), frozenset({"n/a", "select"}))
    assert out.tolist()[0] == "VP of Sales"
    assert out.isna().tolist() == [False, True, True, True, False]


def test_event_labels_fold_to_canonical_types() -> None:
    assert fold_event_type(pd.Series(["Pricing Page View", " demo-request ", "EMAIL_OPEN"])).tolist() == [
        "pricing_page_view", "demo_request", "email_open"]


def test_a_clean_flat_export_keeps_every_row_typed_and_normalised(tmp_path: Path) -> None:
    result = run_flat(tmp_path, ROWS)
    r = result.records.set_index("record_id")
    assert r["outcome"].to_dict() == {"1": "won", "2": "lost", "3": "open"}
    assert r.loc["1", "employees"] == 1200 and r.loc["2", "employees"] == 3500
    assert r.loc["3", "industry"] == "software"  # trimmed and case-folded
    assert r["demo_booked"].tolist()[:2] == [1.0, 0.0]
    assert pd.isna(r.loc["3", "decision_date"]) and r.loc["1", "decision_date"] == pd.Timestamp("2024-03-01")
    assert r.loc["1", "job_title"] == "VP Sales"
    assert len(result.quarantine) == 0
    assert result.events is None
    assert [f.name for f in result.fields] == ["industry", "employees", "demo_booked", "job_title"]


def test_aliases_apply_after_case_folding(tmp_path: Path) -> None:
    rows = [*ROWS, "4,Lost,2024-04-02,2024-02-01,SOFWARE,10,no,CTO"]
    result = run_flat(tmp_path, rows)
    assert result.records.set_index("record_id").loc["4", "industry"] == "software"


def test_stage_spellings_fold_together(tmp_path: Path) -> None:
    rows = ["1, won ,2024-03-01,2024-01-05,a,1,yes,x", "2,LOST,2024-03-01,2024-01-05,a,1,yes,x",
            "3,closed-won,2024-03-01,2024-01-05,a,1,yes,x"]
    outcome = {"column": "stage", "won": ["Won", "Closed Won"], "lost": ["Lost"]}
    result = run_flat(tmp_path, rows, outcome=outcome)
    assert result.records["outcome"].tolist() == ["won", "lost", "won"]


def test_relational_export_joins_lookups_and_keys_events(tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_text(
        "deal,contact,status,decided\nD1,c1,won,2024-03-01\nD2,c2,lost,2024-03-02\nD3,c9,open,\nD4,,open,\n")
    (tmp_path / "contacts.csv").write_text("cid,company,title\nC1,acme,CEO\nc2,Globex,Intern\n")
    (tmp_path / "companies.csv").write_text("name,size\nACME,10\nglobex,20000\n")
    (tmp_path / "activity.csv").write_text(
        "who,what,when\nc1,Demo Request,2024-02-01 10:00:00\nC2,Blog View,2024-02-02 10:00:00\n"
        "c404,Blog View,2024-02-02 10:00:00\nc1,Blog View,not a time\n")
    source = SourceParams.model_validate({
        "kind": "relational", "dir": str(tmp_path),
        "primary": {"file": "deals.csv", "id": "deal",
                    "outcome": {"column": "status", "won": ["won"], "lost": ["lost"], "open": ["open"]},
                    "decision_date": {"column": "decided"}},
        "lookups": {
            "contacts": {"file": "contacts.csv", "id": "cid", "join": {"column": "contact"},
                         "columns": {"job_title": {"column": "title"}}},
            "companies": {"file": "companies.csv", "id": "name", "join": {"table": "contacts", "column": "company"},
                          "columns": {"employees": {"column": "size"}}},
        },
        "events": {"file": "activity.csv", "key": "who", "table": "contacts", "type": "what",
                   "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M:%S"}},
    })
    result = ingest(source)
    r = result.records.set_index("record_id")
    # Keys match trimmed and case-insensitively, through two levels of joins.
    assert r.loc["D1", "job_title"] == "CEO" and r.loc["D1", "employees"] == 10
    assert r.loc["D2", "employees"] == 20000
    # A deal whose contact is unknown keeps its row, with the lookup fields missing.
    assert pd.isna(r.loc["D3", "job_title"]) and pd.isna(r.loc["D4", "employees"])
    assert any("no match in contacts" in n for n in result.report["primary"].notes)
    assert r.loc["D1", "event_key"] == "c1" and r.loc["D2", "event_key"] == "c2"
    assert r["event_key"].isna().tolist() == [False, False, True, True]
    assert result.events is not None
    assert sorted(result.events["event_type"]) == ["blog_view", "demo_request"]
    reasons = result.quarantine.set_index("line")["reason"]
    assert "not found in contacts" in reasons[4]
    assert "unparseable date" in reasons[5]
    ev = result.report["events"]
    assert (ev.rows_read, ev.rows_kept, ev.rows_quarantined) == (4, 2, 2)


def test_keep_latest_resolves_duplicate_ids_by_created_date(tmp_path: Path) -> None:
    rows = ["1,Lost,2024-03-01,2024-01-05,a,1,no,x", "1,Won,2024-06-01,2024-04-05,a,1,no,x",
            "2,Lost,2024-04-01,2024-02-01,a,1,no,x"]
    result = run_flat(tmp_path, rows, duplicates="keep_latest")
    assert result.records.set_index("record_id").loc["1", "outcome"] == "won"
    q = result.quarantine
    assert len(q) == 1 and q["line"].iloc[0] == 2 and "superseded" in q["reason"].iloc[0]
