from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.ingest import (
    clean_text,
    fold_event_type,
    ingest,
    parse_number,
    read_raw,
)
from pipeline.schema import COLUMNS


def _frame(table: str, rows: list[dict[str, str]]) -> pd.DataFrame:
    """Raw text rows; columns not given are blank, as in a CSV export."""
    return pd.DataFrame([{c: r.get(c, "") for c in COLUMNS[table]} for r in rows], dtype="string")


def _raw(**overrides: list[dict[str, str]]) -> dict[str, pd.DataFrame]:
    tables = {
        "accounts": [{"account_id": "A1", "industry": " Software ", "employees": "1,200", "annual_revenue": "$3.5M",
                      "country": "Germany", "founded_year": "2001"},
                     {"account_id": "A2", "industry": "n/a", "employees": "-5", "annual_revenue": "lots"}],
        "leads": [{"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-05", "job_title": "VP Sales",
                   "stated_budget": "50000", "stated_need": "High"},
                  {"lead_id": "L2", "account_id": "A2", "created_date": "2024-02-01"},
                  {"lead_id": "L3", "account_id": "A1", "created_date": "2024-03-01"}],
        "deals": [{"deal_id": "D1", "lead_id": "L1", "created_date": "2024-01-10", "closed_date": "2024-03-01",
                   "stage": "Closed Won", "amount": "40000"},
                  {"deal_id": "D2", "lead_id": "L2", "created_date": "2024-02-03", "closed_date": "2024-04-01",
                   "stage": " closed-lost "},
                  {"deal_id": "D3", "lead_id": "L3", "created_date": "2024-03-02", "stage": "Proposal"}],
        "events": [{"event_id": "1", "lead_id": "L1", "event_type": "Pricing Page View",
                    "timestamp": "2024-02-20 10:00:00"},
                   {"event_id": "2", "lead_id": "L2", "event_type": "Demo Request",
                    "timestamp": "2024-02-21 11:00:00"}],
    }
    tables.update(overrides)
    return {name: _frame(name, rows) for name, rows in tables.items()}


@pytest.mark.parametrize(("text", "expected"), [
    ("1,200", 1200.0), ("$3.5M", 3.5e6), ("2k", 2000.0), ("-5", -5.0), (" 42 ", 42.0), ("1.5B", 1.5e9),
])
def test_parse_number_reads_crm_formats(text: str, expected: float) -> None:
    assert parse_number(pd.Series([text]))[0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["n/a", "", "lots", "-", "Select", "12 apples"])
def test_parse_number_gives_missing_for_non_numbers(text: str) -> None:
    assert pd.isna(parse_number(pd.Series([text]))[0])


def test_clean_text_trims_and_treats_placeholders_as_missing() -> None:
    out = clean_text(pd.Series(["  VP   of Sales ", "N/A", "", "Select", "ok"]))
    assert out.tolist()[0] == "VP of Sales"
    assert out.isna().tolist() == [False, True, True, True, False]


def test_event_labels_fold_to_canonical_types() -> None:
    assert fold_event_type(pd.Series(["Pricing Page View", " demo-request ", "EMAIL_OPEN"])).tolist() == [
        "pricing_page_view", "demo_request", "email_open"]


def test_clean_export_keeps_every_row_and_normalises_values() -> None:
    result = ingest(_raw())
    accounts = result.tables["accounts"].set_index("account_id")
    assert accounts.loc["A1", "employees"] == 1200 and accounts.loc["A1", "annual_revenue"] == 3.5e6
    assert accounts.loc["A1", "industry"] == "software"
    assert pd.isna(accounts.loc["A2", "industry"])
    # A negative headcount or unreadable revenue blanks that value, not the row.
    assert pd.isna(accounts.loc["A2", "employees"]) and pd.isna(accounts.loc["A2", "annual_revenue"])
    assert result.report["accounts"].values_blanked == {"employees: negative": 1, "annual_revenue: not a number": 1}
    assert result.tables["deals"].set_index("deal_id")["outcome"].to_dict() == {"D1": "won", "D2": "lost", "D3": "open"}
    assert len(result.quarantine) == 0
    assert str(result.tables["events"]["event_type"].iloc[0]) == "pricing_page_view"


@pytest.mark.parametrize(("table", "rows", "column", "reason"), [
    ("leads", [{"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-05"},
               {"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-06"}],
     "lead_id", "duplicate lead_id (first at line 2)"),
    ("leads", [{"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-05"},
               {"lead_id": "L9", "account_id": "A404", "created_date": "2024-01-05"}],
     "account_id", "'A404' not found in accounts"),
    ("leads", [{"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-05"},
               {"lead_id": "L9", "account_id": "A1", "created_date": "31/02/2024"}],
     "created_date", "unparseable date '31/02/2024'"),
    ("leads", [{"lead_id": "L1", "account_id": "A1", "created_date": "2024-01-05"},
               {"lead_id": "", "account_id": "A1", "created_date": "2024-01-05"}],
     "lead_id", "missing lead_id"),
])
def test_unusable_lead_rows_are_quarantined_with_their_reason(table, rows, column, reason) -> None:
    raw = _raw(**{table: [*rows, {"lead_id": "L2", "account_id": "A2", "created_date": "2024-02-01"},
                          {"lead_id": "L3", "account_id": "A1", "created_date": "2024-03-01"}]})
    result = ingest(raw)
    bad = result.quarantine[result.quarantine["table"] == table]
    assert len(bad) == 1
    assert bad["column"].iloc[0] == column
    assert reason in bad["reason"].iloc[0]
    assert bad["line"].iloc[0] == 3  # header is line 1, the bad row is the second data row
    report = result.report[table]
    assert report.rows_read == report.rows_kept + report.rows_quarantined == len(raw[table])


def test_deal_problems_are_quarantined() -> None:
    deals = [
        {"deal_id": "D1", "lead_id": "L1", "created_date": "2024-01-10", "closed_date": "2024-03-01", "stage": "Won"},
        {"deal_id": "D2", "lead_id": "L2", "created_date": "2024-02-03", "closed_date": "2024-04-01", "stage": "Lost"},
        {"deal_id": "D4", "lead_id": "L3", "created_date": "2024-02-03", "closed_date": "2024-04-01", "stage": "??"},
        {"deal_id": "D5", "lead_id": "L3", "created_date": "2024-05-03", "closed_date": "2024-04-01", "stage": "Lost"},
        {"deal_id": "D6", "lead_id": "L3", "created_date": "2024-05-03", "closed_date": "", "stage": "Won"},
        {"deal_id": "D7", "lead_id": "L404", "created_date": "2024-05-03", "stage": "Proposal"},
    ]
    result = ingest(_raw(deals=deals))
    reasons = result.quarantine.set_index(result.quarantine["record"].str.extract(r'"deal_id": "(D\d)"')[0])["reason"]
    assert "maps to no outcome" in reasons["D4"]
    assert "is before created_date" in reasons["D5"]
    assert "missing closed_date on a closed deal" in reasons["D6"]
    assert "not found in leads" in reasons["D7"]
    assert set(result.tables["deals"]["deal_id"]) == {"D1", "D2"}
    r = result.report["deals"]
    assert (r.rows_read, r.rows_kept, r.rows_quarantined) == (6, 2, 4)


def test_bad_events_are_quarantined() -> None:
    events = [
        {"event_id": "1", "lead_id": "L1", "event_type": "Pricing Page View", "timestamp": "2024-02-20 10:00:00"},
        {"event_id": "2", "lead_id": "L404", "event_type": "Blog View", "timestamp": "2024-02-20 10:00:00"},
        {"event_id": "3", "lead_id": "L1", "event_type": "Telepathy", "timestamp": "2024-02-20 10:00:00"},
        {"event_id": "4", "lead_id": "L1", "event_type": "Blog View", "timestamp": "yesterday"},
        {"event_id": "5", "lead_id": "L1", "event_type": "", "timestamp": "2024-02-20 10:00:00"},
    ]
    result = ingest(_raw(events=events))
    assert result.tables["events"]["event_id"].tolist() == ["1"]
    assert sorted(result.quarantine["column"]) == ["event_type", "event_type", "lead_id", "timestamp"]


def test_no_won_deal_stops_with_a_clear_error() -> None:
    deals = [{"deal_id": "D1", "lead_id": "L1", "created_date": "2024-01-10", "closed_date": "2024-03-01",
              "stage": "Lost"}]
    with pytest.raises(DataError, match="no won deals"):
        ingest(_raw(deals=deals))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "deals.csv", "deal_id,lead_id,stage\nD1,L1,Won\n")
    with pytest.raises(DataError, match="missing required column\\(s\\) created_date, closed_date, amount"):
        read_raw(path, table="deals")


def test_wrong_delimiter_gets_a_hint(tmp_path: Path) -> None:
    header = ";".join(COLUMNS["events"])
    path = _write(tmp_path / "events.csv", f"{header}\n1;L1;Blog View;2024-01-01 00:00:00\n")
    with pytest.raises(DataError, match="delimited by something other than ','"):
        read_raw(path, table="events")


def test_empty_and_garbage_files_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_raw(_write(tmp_path / "leads.csv", ""), table="leads")
    garbage = tmp_path / "accounts.parquet"
    garbage.write_bytes(b"\x00\x01not parquet at all")
    with pytest.raises(DataError, match="cannot be read"):
        read_raw(garbage, table="accounts")


def test_undeclared_columns_are_ignored_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    header = ",".join(COLUMNS["events"]) + ",utm_campaign"
    path = _write(tmp_path / "events.csv", f"{header}\n1,L1,Blog View,2024-01-01 00:00:00,spring\n")
    with caplog.at_level("INFO"):
        frame = read_raw(path, table="events")
    assert list(frame.columns) == list(COLUMNS["events"])
    assert "ignoring undeclared column(s) utm_campaign" in caplog.text
