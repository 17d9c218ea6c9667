"""Class 2 of issue 18 (reader part): common real values read, never an internal error.

Timestamps with UTC offsets, event types in any script, and Parquet exports with native
timestamps, dates, numbers, booleans, lists and structs each read as the equivalent CSV would."""

import re
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import SourceParams, parse_settings
from pipeline.data.ingest import IngestResult, ingest
from pipeline.data.parsing import fold, fold_event_type, parse_dates
from tests.data.test_ingest import HEADER, ROWS, flat_source, run_flat

ISO_Z = "%Y-%m-%dT%H:%M:%S%z"


def _balanced(result: IngestResult) -> None:
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined, name


@pytest.mark.parametrize(("closed", "expected"), [
    (["2024-03-01T10:00:00+02:00", "2024-04-01T10:00:00+02:00"], ["2024-03-01 08:00", "2024-04-01 08:00"]),
    (["2024-03-01T10:00:00+02:00", "2024-04-01T10:00:00Z"], ["2024-03-01 08:00", "2024-04-01 10:00"]),
    (["2024-03-01T23:30:00-05:00", "2024-04-01T10:00:00+05:30"], ["2024-03-02 04:30", "2024-04-01 04:30"]),
])
def test_offsets_convert_to_naive_utc_with_a_declared_z_format(tmp_path: Path, closed: list[str],
                                                               expected: list[str]) -> None:
    """class 2 rule: a date column with offsets (mixed offsets and Z too) is converted to UTC, then naive."""
    rows = [f"1,Won,{closed[0]},2024-01-05T10:00:00Z,Software,1,yes,VP",
            f"2,Lost,{closed[1]},2024-02-01T10:00:00+01:00,Retail,2,no,CEO"]
    result = run_flat(tmp_path, rows, decision_date={"column": "closed", "format": ISO_Z},
                      created_date={"column": "created", "format": ISO_Z})
    got = result.records.set_index("record_id")["decision_date"]
    assert str(got.dtype) == "datetime64[us]"
    assert got.tolist() == [pd.Timestamp(e) for e in expected]
    assert result.records["created_date"].tolist() == [pd.Timestamp("2024-01-05 10:00"),
                                                        pd.Timestamp("2024-02-01 09:00")]
    _balanced(result)


def test_iso_timestamps_with_offsets_read_under_the_default_format(tmp_path: Path) -> None:
    """class 2 rule: ISO 8601 with an offset reads under the default date format too (UTC, naive)."""
    rows = ["1,Won,2024-03-01T10:00:00+02:00,2024-01-05,Software,1,yes,VP",
            "2,Lost,2024-04-01T10:00:00Z,2024-02-01 08:00:00-01:00,Retail,2,no,CEO"]
    result = run_flat(tmp_path, rows)
    assert result.records["decision_date"].tolist() == [pd.Timestamp("2024-03-01 08:00"),
                                                         pd.Timestamp("2024-04-01 10:00")]
    assert result.records["created_date"].tolist()[1] == pd.Timestamp("2024-02-01 09:00")


def test_an_unreadable_offset_timestamp_is_quarantined_not_an_exception(tmp_path: Path) -> None:
    """class 2 rule: a value that can't be parsed takes the quarantine path, never an exception."""
    rows = ["1,Won,2024-03-01T10:00:00+02:00,2024-01-05T10:00:00Z,Software,1,yes,VP",
            "2,Lost,2024-04-01T10:00:00+02:00,2024-02-01T10:00:00Z,Retail,2,no,CEO",
            "3,Won,2024-13-45T99:00:00+02:00,2024-02-01T10:00:00Z,Retail,2,no,CEO",
            "4,Lost,soon+02:00,2024-02-01T10:00:00+25:00,Retail,2,no,CEO"]
    result = run_flat(tmp_path, rows, decision_date={"column": "closed", "format": ISO_Z},
                      created_date={"column": "created", "format": ISO_Z})
    reasons = dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True))
    assert "unparseable date" in reasons[4] and "unparseable date" in reasons[5]
    assert sorted(result.records["record_id"]) == ["1", "2"]
    _balanced(result)


@settings(max_examples=40, deadline=None)
@given(st.datetimes(min_value=pd.Timestamp("1980-01-01").to_pydatetime(),
                    max_value=pd.Timestamp("2100-01-01").to_pydatetime()),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_any_offset_gives_the_same_utc_instant(when: Any, minutes: int) -> None:
    """class 2 rule: whatever the offset, a timestamp reads as its naive UTC instant."""
    when = pd.Timestamp(when).floor("s")
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    local = when + pd.Timedelta(minutes=minutes)
    text = pd.Series([local.strftime("%Y-%m-%dT%H:%M:%S") + zone, when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"])
    for fmt in (ISO_Z, "%Y-%m-%d", None):
        assert parse_dates(text, fmt).tolist() == [when, when], fmt


# ---------------------------------------------------------------- event types

def _events_source(tmp_path: Path, types: list[str]) -> SourceParams:
    (tmp_path / "export.csv").write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    lines = [f'1,"{t}",2024-01-10 10:00:00' for t in types]
    (tmp_path / "activity.csv").write_text("\n".join(["who,what,when", *lines]) + "\n", encoding="utf-8")
    spec = flat_source(tmp_path) | {"kind": "relational"}
    spec["events"] = {"file": "activity.csv", "key": "who", "table": "primary", "type": "what",
                      "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M:%S"}}
    return parse_settings({"source": spec}).source


@pytest.mark.parametrize("types", [
    ["価格ページ閲覧", "デモ予約"],
    ["Просмотр цены", "Запрос демо"],
    ["🎉", "🔥🔥", "👀 page"],
    ["Café visit", "Pricing Page View", "!!!"],
])
def test_event_types_in_any_script_fold_to_distinct_snake_case(tmp_path: Path, types: list[str]) -> None:
    """class 2 rule: any non-empty event type yields a valid, stable, distinct snake_case name."""
    result = ingest(_events_source(tmp_path, types))
    assert result.events is not None
    names = result.events["event_type"].tolist()
    assert len(names) == len(types) and len(set(names)) == len(types)
    assert all(re.fullmatch(r"[0-9a-z_]+", n) for n in names)
    again = ingest(_events_source(tmp_path, types))
    assert again.events is not None and again.events["event_type"].tolist() == names


def test_an_event_type_empty_after_trimming_quarantines_its_row(tmp_path: Path) -> None:
    """class 2 rule: an event type that is empty after trimming quarantines the event row with a reason."""
    result = ingest(_events_source(tmp_path, ["Demo", "   ", ""]))
    assert result.events is not None and result.events["event_type"].tolist() == ["demo"]
    bad = result.quarantine[result.quarantine["table"] == "events"]
    assert sorted(bad["line"]) == [3, 4] and (bad["reason"] == "missing what").all()
    _balanced(result)


def _latin(text: str) -> str:
    folded = fold(pd.Series([text])).iloc[0]
    return "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda t: t.strip()), min_size=2, max_size=6))
def test_fold_event_type_names_are_valid_stable_and_never_collide(types: list[str]) -> None:
    """class 2 rule: two different event types share a name only when they are the same word."""
    names = fold_event_type(pd.Series(types)).tolist()
    assert names == fold_event_type(pd.Series(types)).tolist()
    assert all(isinstance(n, str) and re.fullmatch(r"[0-9a-z_]+", n) for n in names)
    for a, name_a in zip(types, names, strict=True):
        for b, name_b in zip(types, names, strict=True):
            if name_a == name_b:  # the same word: the same Latin letters and digits, spaced alike
                assert re.sub(r"[^0-9a-z]+", "_", _latin(a)).strip("_") == \
                    re.sub(r"[^0-9a-z]+", "_", _latin(b)).strip("_")
                assert _latin(a).isascii() == _latin(b).isascii()
                if not _latin(a).isascii() or not re.search(r"[0-9a-z]", _latin(a)):
                    assert fold(pd.Series([a])).iloc[0] == fold(pd.Series([b])).iloc[0]


# ---------------------------------------------------------------- Parquet exports

def _parquet_export(tmp_path: Path, columns: dict[str, pa.Array]) -> IngestResult:
    pq.write_table(pa.table(columns), tmp_path / "export.parquet")
    return ingest(parse_settings({"source": flat_source(tmp_path, file="export.parquet")}).source)


def _base(**override: pa.Array) -> dict[str, pa.Array]:
    columns: dict[str, pa.Array] = {
        "id": pa.array([1, 2, 3]),
        "stage": pa.array(["Won", "Lost", "Open"]),
        "closed": pa.array([pd.Timestamp("2024-03-01 10:00"), pd.Timestamp("2024-04-01"), None],
                           type=pa.timestamp("ns")),
        "created": pa.array([pd.Timestamp("2024-01-05").date(), pd.Timestamp("2024-02-01").date(),
                             pd.Timestamp("2024-05-01").date()], type=pa.date32()),
        "industry": pa.array(["Software", "Retail", None]),
        "employees": pa.array([1200.0, 3.5e10, None]),
        "demo_booked": pa.array([True, False, None]),
        "title": pa.array(["VP Sales", "Intern", "CEO"]).dictionary_encode(),
    }
    columns.update(override)
    return columns


def test_a_parquet_export_with_native_timestamps_and_dates_reads(tmp_path: Path) -> None:
    """class 2 rule: native timestamps/dates read as dates whatever the declared text format."""
    result = _parquet_export(tmp_path, _base())
    r = result.records.set_index("record_id")
    assert sorted(r.index) == ["1", "2", "3"]
    assert r.loc["1", "decision_date"] == pd.Timestamp("2024-03-01 10:00")
    assert r.loc["2", "created_date"] == pd.Timestamp("2024-02-01")
    assert r.loc["2", "employees"] == 3.5e10 and r.loc["1", "demo_booked"] == 1.0 and r.loc["2", "demo_booked"] == 0.0
    _balanced(result)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_a_zoned_native_timestamp_reads_as_naive_utc(tmp_path: Path, zone: str) -> None:
    """class 2 rule: a tz-aware native timestamp reads as UTC, naive."""
    wall = pd.Series(pd.to_datetime(["2024-03-01 10:00", "2024-04-01 10:00", None])).dt.tz_localize(zone)
    closed = pa.Array.from_pandas(wall.astype(f"datetime64[us, {zone}]"))
    assert str(closed.type) == f"timestamp[us, tz={zone}]"
    result = _parquet_export(tmp_path, _base(closed=closed))
    got = result.records.set_index("record_id")["decision_date"]
    assert got["1"] == pd.Timestamp("2024-03-01 10:00", tz=zone).tz_convert("UTC").tz_localize(None)


def test_unused_list_struct_and_map_columns_are_ignored(tmp_path: Path) -> None:
    """class 2 rule: list/struct/map columns the mapping never uses do not stop the read."""
    extra = {
        "tags": pa.array([["a", "b"], [], None], type=pa.list_(pa.string())),
        "owner": pa.array([{"name": "x", "n": 1}, None, {"name": "z", "n": 3}]),
        "props": pa.array([[("k", "v")], None, []], type=pa.map_(pa.string(), pa.string())),
    }
    result = _parquet_export(tmp_path, _base(**extra))
    assert len(result.records) == 3
    _balanced(result)


def test_a_used_list_column_reads_as_json_text(tmp_path: Path) -> None:
    """class 2 rule: a list column the mapping uses is turned to text (JSON), as a CSV export holds it."""
    titles = pa.array([["VP", "Sales"], ["Intern"], None], type=pa.list_(pa.string()))
    result = _parquet_export(tmp_path, _base(title=titles))
    assert result.records.set_index("record_id")["job_title"].tolist()[:2] == ['["VP", "Sales"]', '["Intern"]']


def test_a_parquet_activity_log_with_zoned_timestamps_and_odd_types_reads(tmp_path: Path) -> None:
    """class 2 rule: a Parquet activity log reads like its CSV: zoned timestamps as UTC, other columns ignored."""
    (tmp_path / "export.csv").write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    when = pd.Series(pd.to_datetime(["2024-01-10 10:00", "2024-01-11 23:30"])).dt.tz_localize("Asia/Tokyo")
    pq.write_table(pa.table({
        "who": pa.array([1, 2]),
        "what": pa.array(["Demo Request", "価格ページ"]),
        "when": pa.Array.from_pandas(when.astype("datetime64[ns, Asia/Tokyo]")),
        "raw": pa.array([b"\xff\x00", None]),
        "tags": pa.array([["a"], None], type=pa.list_(pa.string())),
    }), tmp_path / "activity.parquet")
    spec = flat_source(tmp_path) | {"kind": "relational"}
    spec["events"] = {"file": "activity.parquet", "key": "who", "table": "primary", "type": "what",
                      "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M:%S"}}
    result = ingest(parse_settings({"source": spec}).source)
    assert result.events is not None
    assert result.events["timestamp"].tolist() == [pd.Timestamp("2024-01-10 01:00"), pd.Timestamp("2024-01-11 14:30")]
    assert result.events["event_type"].tolist()[0] == "demo_request"
    assert re.fullmatch(r"type_[0-9a-f]{8}", result.events["event_type"].tolist()[1])
