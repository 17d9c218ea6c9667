"""What the features stage reads from ingest: the same features as from the ingest result; damage named."""

import pandas as pd
import pytest


def test_features_from_the_interim_files_equal_those_from_the_ingest_result(small, tmp_path) -> None:
    # The stage reads what ingest wrote: keys as shared dictionaries, the log on a thread of its own
    # (its latest event taken from the Parquet statistics). It must build exactly the in-memory features.
    from pipeline.data.ingest import write_result
    from pipeline.features.events import EventLog, PendingEventLog
    from pipeline.features.interim import read_interim
    from pipeline.stages.features import featurise

    write_result(small.ingested, interim_dir=tmp_path / "interim", report_path=tmp_path / "ingest.json")
    interim = read_interim(tmp_path / "interim")
    assert isinstance(interim.events, PendingEventLog)
    assert interim.event_accounts is not None
    assert interim.records["event_key"].cat.categories.equals(interim.event_accounts["event_key"].cat.categories)
    whole = EventLog.read(tmp_path / "interim" / "events.parquet")
    assert interim.events.latest() == whole.latest() == small.ingested.events["timestamp"].max()
    assert len(interim.events) == len(whole) == len(small.ingested.events)
    from_files = featurise(interim.records, interim.events, interim.fields, settings=small.settings,
                           event_accounts=interim.event_accounts)
    pd.testing.assert_frame_equal(from_files.matrix, small.features.matrix, check_exact=True)
    assert from_files.specs == small.features.specs


def test_a_damaged_interim_file_fails_with_the_file_named(small, tmp_path) -> None:
    from pipeline.data.ingest import write_result
    from pipeline.errors import DataError
    from pipeline.features.events import EventLog
    from pipeline.features.interim import read_interim

    interim = tmp_path / "interim"
    write_result(small.ingested, interim_dir=interim, report_path=tmp_path / "ingest.json")
    events = interim / "events.parquet"
    data = bytearray(events.read_bytes())
    data[100:len(data) // 2] = bytes(len(data) // 2 - 100)  # the pages zeroed, the footer intact
    events.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"events\.parquet: row group 0 cannot be read"):
        EventLog.read(events)
    (interim / "records.parquet").write_bytes(b"PAR1 nothing else")
    with pytest.raises(DataError, match=r"records\.parquet: cannot be read"):
        read_interim(interim)
