"""Expectations on the synthetic export after ingest: what every later stage relies on."""

import json

import pandas as pd

from pipeline.contracts.files import FIELDS_FILE, INGEST_REPORT_FILE, QUARANTINE_FILE, RECORDS_FILE
from pipeline.stages import ingest as ingest_stage


def test_rows_read_equal_rows_kept_plus_quarantined(small) -> None:
    quarantine = small.ingested.quarantine
    assert set(small.ingested.report) == {"primary", "leads", "accounts", "events"}
    for table, r in small.ingested.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined
        assert r.rows_quarantined == (quarantine["table"] == table).sum()
        assert r.rows_quarantined < 0.05 * r.rows_read
    assert small.ingested.report["primary"].rows_kept == len(small.ingested.records)
    assert small.ingested.events is not None
    assert small.ingested.report["events"].rows_kept == len(small.ingested.events)


def test_every_quarantined_row_has_a_column_a_reason_and_the_raw_record(small) -> None:
    q = small.ingested.quarantine
    assert len(q) > 0  # the generator plants dirty rows
    assert q["reason"].str.len().gt(0).all()
    assert q["column"].notna().all()
    assert all(isinstance(json.loads(r), dict) for r in q["record"])


def test_ids_are_unique_and_events_resolve(small) -> None:
    records, events = small.ingested.records, small.ingested.events
    assert records["record_id"].is_unique and records["record_id"].notna().all()
    assert events is not None
    assert events["event_key"].isin(records["event_key"].dropna()).mean() > 0.99
    # Almost every deal finds its lead and account; the planted orphans are the exceptions.
    assert records["job_title"].notna().mean() > 0.95
    assert records["employees"].notna().mean() > 0.95


def test_outcomes_and_dates_are_consistent(small) -> None:
    records = small.ingested.records
    assert set(records["outcome"]) == {"won", "lost", "open"}
    closed = records[records["outcome"] != "open"]
    assert closed["decision_date"].notna().all()
    assert (closed["decision_date"] >= closed["created_date"]).all()
    assert records.loc[records["outcome"] == "open", "decision_date"].isna().all()
    assert pd.api.types.is_datetime64_any_dtype(small.ingested.events["timestamp"])


def test_numbers_are_parsed_and_within_bounds(small) -> None:
    records = small.ingested.records
    for column in ("employees", "annual_revenue", "amount", "stated_budget"):
        assert records[column].dtype == "float64"
        assert (records[column].dropna() >= 0).all()


def test_categories_are_trimmed_and_case_folded(small) -> None:
    industry = small.ingested.records["industry"].dropna()
    assert (industry == industry.str.strip().str.casefold()).all()
    assert {"software", "saas", "sofware"} <= set(industry)  # aliases stay distinct until mapped


def test_stage_writes_records_quarantine_fields_and_report(small) -> None:
    result = ingest_stage.run(small.settings)
    interim = small.settings.paths.interim
    assert len(pd.read_parquet(interim / RECORDS_FILE)) == len(result.records)
    assert len(pd.read_csv(interim / QUARANTINE_FILE)) == len(result.quarantine)
    assert [f["name"] for f in json.loads((interim / FIELDS_FILE).read_text())] == [f.name for f in result.fields]
    metric = json.loads(small.settings.paths.ingest_report.read_text())
    assert metric["total"]["rows_read"] == metric["total"]["rows_kept"] + metric["total"]["rows_quarantined"]
    detail = json.loads((interim / INGEST_REPORT_FILE).read_text())
    assert detail["primary"]["quarantine_reasons"]
