"""Expectations on the synthetic export after ingest: what every later stage relies on."""

import json

import pandas as pd

from pipeline import ingest as ingest_stage
from pipeline.schema import INGEST_REPORT_FILE, QUARANTINE_FILE, TABLES


def test_rows_read_equal_rows_kept_plus_quarantined(small) -> None:
    quarantine = small.ingested.quarantine
    for table in TABLES:
        r = small.ingested.report[table]
        assert r.rows_read == r.rows_kept + r.rows_quarantined
        assert r.rows_kept == len(small.ingested.tables[table])
        assert r.rows_quarantined == (quarantine["table"] == table).sum()
        assert r.rows_quarantined < 0.05 * r.rows_read


def test_every_quarantined_row_has_a_column_a_reason_and_the_raw_record(small) -> None:
    q = small.ingested.quarantine
    assert len(q) > 0  # the generator plants dirty rows
    assert q["reason"].str.len().gt(0).all()
    assert q["column"].notna().all()
    assert all(isinstance(json.loads(r), dict) for r in q["record"])


def test_ids_are_unique_and_keys_resolve(small) -> None:
    t = small.ingested.tables
    for table, key in (("accounts", "account_id"), ("leads", "lead_id"), ("deals", "deal_id")):
        assert t[table][key].is_unique
        assert t[table][key].notna().all()
    assert t["leads"]["account_id"].isin(t["accounts"]["account_id"]).all()
    assert t["deals"]["lead_id"].isin(t["leads"]["lead_id"]).all()
    assert t["events"]["lead_id"].isin(t["leads"]["lead_id"]).all()


def test_outcomes_and_dates_are_consistent(small) -> None:
    deals = small.ingested.tables["deals"]
    assert set(deals["outcome"]) == {"won", "lost", "open"}
    closed = deals[deals["outcome"] != "open"]
    assert closed["closed_date"].notna().all()
    assert (closed["closed_date"] >= closed["created_date"]).all()
    assert pd.api.types.is_datetime64_any_dtype(small.ingested.tables["events"]["timestamp"])


def test_numbers_are_parsed_and_non_negative(small) -> None:
    accounts = small.ingested.tables["accounts"]
    for column in ("employees", "annual_revenue"):
        assert accounts[column].dtype == "float64"
        assert (accounts[column].dropna() >= 0).all()
    assert accounts["employees"].notna().mean() > 0.95


def test_categories_are_trimmed_and_case_folded(small) -> None:
    industry = small.ingested.tables["accounts"]["industry"].dropna()
    assert (industry == industry.str.strip().str.casefold()).all()


def test_stage_writes_tables_quarantine_and_report(small) -> None:
    result = ingest_stage.run(small.settings)
    interim = small.settings.paths.interim
    for table in TABLES:
        assert len(pd.read_parquet(interim / f"{table}.parquet")) == result.report[table].rows_kept
    assert len(pd.read_csv(interim / QUARANTINE_FILE)) == len(result.quarantine)
    metric = json.loads(small.settings.paths.ingest_report.read_text())
    assert metric["total"]["rows_read"] == metric["total"]["rows_kept"] + metric["total"]["rows_quarantined"]
    detail = json.loads((interim / INGEST_REPORT_FILE).read_text())
    assert detail["deals"]["quarantine_reasons"]
