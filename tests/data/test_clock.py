"""Class 1 of the hardening corpus: one bad date can't move the clock for everyone.

The rule every case checks: the instant open leads are scored as of comes from a declared date
(``source.clock.export_date``, ``--scored-at``) or from the rule of ``source.clock`` (the bulk of
the export's dates, walked forward while dense), never from a few outliers; a row dated after the
clock is quarantined with its reason, and the reports say what was used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import ClockParams, SourceParams, parse_settings
from pipeline.data.clock import export_clock
from pipeline.data.ingest import ingest
from pipeline.errors import DataError
from pipeline.stages.features import featurise
from tests.data.test_ingest import ROWS, flat_source, run_flat

DAY = np.timedelta64(1, "D")


def _balanced(result) -> None:
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined, name


def _opens(n: int, start: str = "2024-01-01") -> list[str]:
    """``n`` open leads created one a day from ``start``."""
    days = pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d")
    return [f"o{i},Open,,{d},Software,10,no,CEO" for i, d in enumerate(days)]


def test_one_open_lead_created_in_2150_does_not_move_the_clock(tmp_path: Path) -> None:
    """Class 1 rule: a far-future creation date is quarantined; the clock stays the export's own."""
    clean = run_flat(tmp_path, [*ROWS, *_opens(60)])
    bad = run_flat(tmp_path, [*ROWS, *_opens(60), "x,Open,,2150-01-01,Software,10,no,CEO"])
    assert clean.clock is not None and bad.clock is not None
    assert bad.clock.instant == clean.clock.instant == pd.Timestamp("2024-05-02")
    reasons = bad.quarantine.set_index("line")["reason"]
    assert reasons.iloc[-1] == "created '2150-01-01' is after the export's date 2024-05-01 (source.clock)"
    assert bad.clock.latest_seen == pd.Timestamp("2150-01-01")
    _balanced(bad)


def test_a_deal_closed_9999_12_31_is_quarantined_as_after_the_export(tmp_path: Path) -> None:
    """Class 1 rule (the CRM placeholder 9999-12-31): a closed row decided after the clock is quarantined."""
    result = run_flat(tmp_path, [*ROWS, *_opens(30), "9,Won,9999-12-31,2024-01-10,Software,10,no,CEO"])
    assert result.clock is not None and result.clock.instant == pd.Timestamp("2024-05-02")
    reason = result.quarantine["reason"].iloc[-1]
    assert reason == "closed '9999-12-31' is after the export's date 2024-05-01 (source.clock)"
    assert "9" not in set(result.records["record_id"])
    _balanced(result)


def _activity_source(folder: Path) -> SourceParams:
    """Three deals (won, lost, open) in ``folder``/deals.csv, and the mapping of them with their
    activity in ``folder``/activity.csv (who, what, when)."""
    (folder / "deals.csv").write_text(
        "deal,status,decided,created\nD1,won,2024-03-01,2024-01-01\nD2,lost,2024-03-02,2024-01-02\n"
        "D3,open,,2024-02-01\n")
    return SourceParams.model_validate({
        "kind": "relational", "dir": str(folder),
        "primary": {"file": "deals.csv", "id": "deal",
                    "outcome": {"column": "status", "won": ["won"], "lost": ["lost"], "open": ["open"]},
                    "decision_date": {"column": "decided"}, "created_date": {"column": "created"}},
        "events": {"file": "activity.csv", "key": "who", "type": "what",
                   "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M:%S"}},
    })


def test_an_event_dated_2099_is_quarantined_and_the_clock_holds(tmp_path: Path) -> None:
    """Class 1 rule: an activity logged far in the future is quarantined, not the new present."""
    events = ["who,what,when"] + [f"D{1 + i % 3},Blog View,2024-02-{1 + i % 28:02d} 10:00:00" for i in range(40)]
    (tmp_path / "activity.csv").write_text("\n".join([*events, "D3,Demo Request,2099-01-01 00:00:00"]) + "\n")
    source = _activity_source(tmp_path)
    result = ingest(source)
    assert result.clock is not None and result.clock.instant == pd.Timestamp("2024-03-03")
    assert result.events is not None and result.events["timestamp"].max() < pd.Timestamp("2025-01-01")
    assert result.report["events"].reasons == {"when: when '…' is after the export's date N (source.clock)": 1}
    _balanced(result)


def test_a_declared_export_date_wins_and_quarantines_what_is_later(tmp_path: Path) -> None:
    """Class 1 rule: source.clock.export_date is the clock; every row dated after it is quarantined."""
    spec = flat_source(tmp_path)
    (tmp_path / "export.csv").write_text("\n".join(["id,stage,closed,created,industry,employees,demo_booked,title",
                                                    *ROWS, *_opens(10), "5,Lost,2024-02-01,2024-01-02,a,1,no,x"])
                                         + "\n")
    source = parse_settings({"source": {**spec, "clock": {"export_date": "2024-03-31"}}}).source
    result = ingest(source)
    assert result.clock is not None and result.clock.rule == "declared: source.clock.export_date"
    assert result.clock.instant == pd.Timestamp("2024-04-01")
    later = result.quarantine["reason"]
    assert len(later) == 2 and later.str.endswith("is after the export's date 2024-03-31 (source.clock)").all()
    assert set(result.records["record_id"]) == {"1", "5", *(f"o{i}" for i in range(10))}


def test_a_dateless_export_has_no_clock_and_asks_for_a_scoring_date(tmp_path: Path) -> None:
    """Class 1 rule: no dates at all gives no clock, and the features say how to set one."""
    rows = ["1,Won,a,1,no,x", "2,Lost,b,2,no,y", "3,Open,c,3,no,z"]
    result = run_flat(tmp_path, rows, header="id,stage,industry,employees,demo_booked,title",
                      decision_date=None, created_date=None)
    assert result.clock is None
    defaults = parse_settings({})
    with pytest.raises(DataError, match=r"set features\.scoring_date"):
        featurise(result.records, result.events, result.fields, settings=defaults, clock=result.clock)


def test_the_features_report_says_which_instant_it_used(tmp_path: Path) -> None:
    """Class 1 rule: the report names the instant and where it came from (clock or features.scoring_date)."""
    result = run_flat(tmp_path, [*ROWS, *_opens(60), "x,Open,,2150-01-01,Software,10,no,CEO"])
    defaults = parse_settings({})
    made = featurise(result.records, result.events, result.fields, settings=defaults, clock=result.clock)
    used = made.report["scoring_instant"]
    assert used["instant"] == "2024-05-02T00:00:00" and used["from"].startswith("the export's date 2024-05-01")
    assert used["latest_date_seen"] == "2150-01-01T00:00:00"
    assert (made.matrix.loc[made.matrix["outcome"] == "open", "as_of"] == pd.Timestamp("2024-05-02")).all()
    fixed = parse_settings({"features": {"scoring_date": "2024-06-01"}})
    made = featurise(result.records, result.events, result.fields, settings=fixed, clock=result.clock)
    assert made.report["scoring_instant"] == {"instant": "2024-06-01T00:00:00", "from": "features.scoring_date"}


def test_the_cli_writes_the_clock_and_scores_as_of_it(tmp_path: Path) -> None:
    """Class 1 rule, through the CLI: ingest writes the clock to its report; features score as of it."""
    (tmp_path / "export.csv").write_text("\n".join(["id,stage,closed,created,industry,employees,demo_booked,title",
                                                    *ROWS, *_opens(60), "x,Open,,2150-01-01,a,1,no,x"]) + "\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"source": flat_source(tmp_path), "paths": {
        "interim": str(tmp_path / "interim"), "ingest_report": str(tmp_path / "ingest.json"),
        "features": str(tmp_path / "features"), "features_report": str(tmp_path / "features.json")}}))
    assert main(["ingest", "--params", str(params)]) == 0
    detail = json.loads((tmp_path / "interim" / "ingest_report.json").read_text())
    assert detail["clock"]["export_date"] == "2024-05-01" and detail["clock"]["latest_seen"].startswith("2150")
    assert main(["features", "--params", str(params)]) == 0
    report = json.loads((tmp_path / "features.json").read_text())
    assert report["scoring_instant"]["instant"] == "2024-05-02T00:00:00"


@pytest.mark.parametrize("gap_days", [91, 400, 3650, 2_900_000])
def test_outliers_any_distance_past_the_gap_are_set_aside(gap_days: int) -> None:
    """Class 1 rule: an outlier further than max_gap_days past the bulk never becomes the clock."""
    bulk = np.arange(np.datetime64("2025-01-01"), np.datetime64("2025-12-31"), DAY).astype("datetime64[us]")
    outlier = np.array([np.datetime64("2025-12-30") + gap_days * DAY], dtype="datetime64[us]")
    clock = export_clock([bulk, outlier], params=ClockParams())
    assert clock is not None and clock.instant == pd.Timestamp("2025-12-31")


@settings(max_examples=50, deadline=None)
@given(bulk_days=st.integers(min_value=30, max_value=2000),
       offsets=st.lists(st.integers(min_value=91, max_value=2_900_000), min_size=1, max_size=40),
       before=st.lists(st.integers(min_value=1, max_value=40_000), max_size=40))
def test_property_random_outlier_dates_never_move_the_clock(bulk_days: int, offsets: list[int],
                                                           before: list[int]) -> None:
    """Class 1 property: for a dense export (a date every day), outliers up to the rule's budget
    (outlier_rows, or outlier_share of the dates), any distance past max_gap_days after the bulk or
    any distance before it, leave the clock where the bulk alone puts it."""
    params = ClockParams(outlier_share=0.01, outlier_rows=10)
    end = np.datetime64("2025-06-30")
    bulk = (end - np.arange(bulk_days)[::-1] * DAY).astype("datetime64[us]")
    budget = max(params.outlier_rows, int(params.outlier_share * (bulk_days + len(offsets))))
    future = np.array([end + o * DAY for o in offsets[:budget]], dtype="datetime64[us]")
    past = np.array([end - (bulk_days + b) * DAY for b in before], dtype="datetime64[us]")
    alone = export_clock([bulk], params=params)
    mixed = export_clock([bulk, future, past], params=params)
    assert alone is not None and mixed is not None
    assert alone.instant == mixed.instant == pd.Timestamp(end + DAY)


def test_the_activity_is_checked_in_chunks_with_the_whole_file_quarantine(tmp_path: Path, monkeypatch) -> None:
    """Ingest reads the activity log a chunk at a time: chunks of 3 rows give the events, the
    quarantine (malformed lines first, then each rule's rows in line order, the clock's last, each
    quoting its raw row) and the report of one whole-file chunk."""
    import pipeline.data.ingest as ingest_module

    events = ["who,what,when,note"] + [f"D{1 + i % 3},Blog View,2024-02-{1 + i % 28:02d} 10:00:00,n{i}"
                                       for i in range(40)]
    events[5] = "D9,Blog View,2024-02-03 10:00:00,unknown key"
    events[8] = ",Demo Request,2024-02-03 10:00:00,no key"
    events[11] = "D1,,2024-02-04 10:00:00,no type"
    events[14] = "D2,Demo Request,yesterday,bad time"
    events[17] = "D2,Demo Request,2099-01-01 00:00:00,late"
    events[20] = "D3,Demo Request,2024-02-05 10:00:00,one,field,too many"
    events[23] = "D1,Webinar,2099-06-01 00:00:00,late too"
    (tmp_path / "activity.csv").write_text("\n".join(events) + "\n")
    source = _activity_source(tmp_path)
    whole = ingest(source)
    monkeypatch.setattr(ingest_module, "EVENT_CHUNK_ROWS", 3)
    chunked = ingest(source)
    assert whole.events is not None and chunked.events is not None
    pd.testing.assert_frame_equal(chunked.events, whole.events)
    pd.testing.assert_frame_equal(chunked.quarantine, whole.quarantine)
    assert {k: r.as_dict() for k, r in chunked.report.items()} == {k: r.as_dict() for k, r in whole.report.items()}
    bad = whole.quarantine[whole.quarantine["table"] == "events"]
    assert bad["line"].tolist() == [21, 12, 9, 6, 15, 18, 24]  # malformed, then rule by rule, the clock's last
    assert json.loads(bad["record"].iloc[-1]) == {"who": "D1", "what": "Webinar", "when": "2099-06-01 00:00:00",
                                                  "note": "late too"}
    _balanced(chunked)
