"""The checked activity log lives on disk between its read and its write (``pipeline.data.event_spill``):
what comes back is what went in, less the rows set aside, and the file written a row group at a time
has the bytes of the whole frame written at once."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.contracts.files import EVENTS_FILE, RECORDS_FILE
from pipeline.data import event_spill
from pipeline.data.clock import DateCounts
from pipeline.data.event_spill import EventSpill, regrouped
from pipeline.data.ingest import _Dictionary, _used, ingest, write_result
from tests.data.test_clock import _activity_source


def test_the_spill_gives_back_its_rows_less_the_ones_removed(monkeypatch) -> None:
    monkeypatch.setattr(event_spill, "READ_ROWS", 7)  # slices that cross the chunks appended
    rng = np.random.default_rng(3)
    key, kind = rng.integers(0, 5, 40).astype(np.int32), rng.integers(0, 3, 40).astype(np.int16)
    time = rng.integers(0, 10**12, 40)
    kind[kind == 2] = 1
    kind[11] = 2  # the only row of type 2
    spill = EventSpill(n_keys=6)
    for lo, hi in ((0, 13), (13, 13), (13, 40)):
        spill.append(key=key[lo:hi], kind=kind[lo:hi], time=time[lo:hi])
    spill.finish()
    counted, whole = spill.dates(), DateCounts.of_micros(time)
    assert np.array_equal(counted.days, whole.days) and np.array_equal(counted.counts, whole.counts)
    assert counted.latest_us == whole.latest_us == int(time.max())
    gone = np.array([0, 11, 20, 39])
    spill.remove(gone)
    spill.remove(np.array([20]))  # removing twice is removing once
    keep = np.setdiff1d(np.arange(40), gone)
    back = list(spill.kept_slices(7))
    assert np.array_equal(np.concatenate([b["key"] for b in back]), key[keep])
    assert np.array_equal(np.concatenate([b["type"] for b in back]), kind[keep])
    assert np.array_equal(np.concatenate([b["time"] for b in back]), time[keep])
    assert spill.kept == 36
    assert np.array_equal(spill.used_keys(), np.isin(np.arange(6), key[keep]))
    assert spill.used_types().tolist() == sorted(set(kind[keep].tolist())) and 2 not in spill.used_types()
    cut = [len(p["key"]) for p in regrouped(spill.kept_slices(7), 10)]
    assert cut == [10, 10, 10, 6]
    folder = spill._dir
    spill.close()
    assert not folder.exists()


def test_regrouping_no_rows_gives_one_empty_slice() -> None:
    parts = list(regrouped(iter([]), 4))
    assert len(parts) == 1 and all(len(v) == 0 for v in parts[0].values())
    exact = list(regrouped(iter([{"key": np.arange(8), "type": np.arange(8), "time": np.arange(8)}]), 4))
    assert [len(p["key"]) for p in exact] == [4, 4]


def _expected_bytes(result, interim: Path, tmp: Path, rows: int) -> bytes:
    """The events file as the whole frame written at once: keys over the records' dictionary, types
    over the kept types, sorted."""
    keys = pd.read_parquet(interim / RECORDS_FILE)["event_key"].cat.categories
    events = result.events
    types = _used(events["event_type"]).sort_values()  # the types kept, as the frame's categories say
    whole = events.assign(
        event_key=pd.Categorical(events["event_key"].astype("string"), categories=pd.Index(keys, dtype="string")),
        event_type=_Dictionary(pd.Index(types)).encode(events["event_type"]))
    whole.to_parquet(tmp, index=False, row_group_size=rows)
    return tmp.read_bytes()


def _ingest_and_write(tmp_path: Path, lines: list[str], monkeypatch, *, rows: int):
    import pipeline.data.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "EVENT_CHUNK_ROWS", 3)
    monkeypatch.setattr(ingest_module, "EVENTS_ROW_GROUP_ROWS", rows)
    monkeypatch.setattr(event_spill, "READ_ROWS", 5)
    (tmp_path / "activity.csv").write_text("\n".join(["who,what,when", *lines]) + "\n")
    interim = tmp_path / "interim"
    result = ingest(_activity_source(tmp_path), work_dir=interim)
    write_result(result, interim_dir=interim, report_path=tmp_path / "report.json")
    return result, interim


def test_the_log_written_a_row_group_at_a_time_has_the_bytes_of_one_write(tmp_path: Path, monkeypatch) -> None:
    """40 events, two of them after the export's clock (removed from the spill after the read), in
    row groups of 4 read back 5 at a time: the bytes pandas writes for the whole frame."""
    lines = [f"D{1 + i % 3},{'Blog View' if i % 4 else 'Demo Request'},2024-02-{1 + i % 28:02d} 10:00:00"
             for i in range(40)]
    lines[6] = "D2,Webinar,2099-01-01 00:00:00"  # the only webinar, and late: not among the types written
    lines[30] = "D1,Blog View,2099-06-01 00:00:00"
    result, interim = _ingest_and_write(tmp_path, lines, monkeypatch, rows=4)
    assert result.report["events"].rows_kept == 38
    assert "webinar" not in set(result.events["event_type"].astype(str))
    written = (interim / EVENTS_FILE).read_bytes()
    assert pq.ParquetFile(interim / EVENTS_FILE).num_row_groups == 10
    assert written == _expected_bytes(result, interim, tmp_path / "whole.parquet", 4)


def test_a_log_with_no_kept_rows_is_written_as_one_write_of_none(tmp_path: Path, monkeypatch) -> None:
    lines = ["D9,Blog View,2024-02-01 10:00:00", "D1,,2024-02-01 10:00:00"]  # an unknown key, no type
    result, interim = _ingest_and_write(tmp_path, lines, monkeypatch, rows=4)
    assert result.report["events"].rows_kept == 0 and result.report["events"].rows_quarantined == 2
    assert (interim / EVENTS_FILE).read_bytes() == _expected_bytes(result, interim, tmp_path / "whole.parquet", 4)


def _dead_pid() -> int:
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


def test_a_spill_a_killed_run_left_is_removed_by_the_next(tmp_path: Path) -> None:
    """The stage holds the log in its output folder: a killed run's spill there is removed when the
    next one starts, a live run's is not, and a spill's folder goes when it is closed."""
    stale = tmp_path / f".events-spill.{_dead_pid()}.x1.tmp"
    stale.mkdir()
    (stale / "key").write_bytes(b"\0" * 8)
    live = tmp_path / f".events-spill.{os.getpid()}.x2.tmp"  # this process: alive
    live.mkdir()
    spill = EventSpill(n_keys=1, folder=tmp_path)
    assert not stale.exists() and live.exists()
    assert spill.folder.parent == tmp_path and spill.folder.name.startswith(f".events-spill.{os.getpid()}.")
    spill.close()
    assert not spill.folder.exists()


def test_the_spill_is_held_in_the_work_folder_and_goes_with_the_result(tmp_path: Path, monkeypatch) -> None:
    result, interim = _ingest_and_write(tmp_path, ["D1,Blog View,2024-02-01 10:00:00"], monkeypatch, rows=4)
    assert result.activity is not None and result.activity.spill.folder.parent == interim
    assert len(result.events) == 1
    del result
    gc.collect()
    assert not list(interim.glob(".events-spill.*"))


def test_a_run_that_fails_leaves_no_spill(tmp_path: Path) -> None:
    """No won row: ingest fails after the log was read into its spill; neither the spill nor a file stays."""
    from pipeline.data.ingest import IngestFailed

    (tmp_path / "activity.csv").write_text("who,what,when\nD1,Blog View,2024-02-01 10:00:00\n")
    source = _activity_source(tmp_path)
    (tmp_path / "deals.csv").write_text("deal,status,decided,created\nD1,lost,2024-03-01,2024-01-01\n"
                                        "D2,lost,2024-03-02,2024-01-02\n")
    interim = tmp_path / "interim"
    with pytest.raises(IngestFailed, match="no won rows"):
        ingest(source, work_dir=interim)
    gc.collect()
    assert not list(interim.rglob("*.parquet")) and not list(interim.glob(".events-spill.*"))


@pytest.mark.parametrize("n", [0, 3, 10, 11])
def test_a_frame_written_in_slices_has_the_bytes_of_one_write(tmp_path: Path, n: int) -> None:
    """``write_parquet`` of a frame's slices (records, display, the account map) against pandas: text of
    both storages, a categorical with missing codes, numbers with NaN, times; row groups of 5."""
    from pipeline.data.ingest import _slices, write_parquet

    rng = np.random.default_rng(n)
    keys = pd.Index(pd.array(["k0", "k1", "k2"], dtype=pd.StringDtype("pyarrow")))
    frame = pd.DataFrame({
        "record_id": pd.array([f"r{i}" for i in range(n)], dtype=pd.StringDtype("pyarrow")),
        "outcome": pd.Series(np.where(rng.random(n) < 0.5, "won", "lost"), dtype="str"),
        "event_key": pd.Categorical.from_codes(rng.integers(-1, 3, n).astype(np.int32),
                                               dtype=pd.CategoricalDtype(keys)),
        "amount": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
        "created_date": pd.Series(rng.integers(0, 10**15, n)).astype("datetime64[us]"),
    })
    frame.to_parquet(tmp_path / "whole.parquet", index=False, row_group_size=5)
    write_parquet(_slices(frame, 5), tmp_path / "slices.parquet", rows=5)
    assert (tmp_path / "slices.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "slices.parquet").metadata.num_rows == n
