"""The activity log read from Parquet as flat arrays equals the frame, and a damaged one names its file."""

import pandas as pd
import pytest

from pipeline.features.intent import event_types, intent_features
from tests.features.test_intent import HALF_LIFE, TYPES, _events


def test_an_event_log_read_from_parquet_equals_the_frame(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.features.events import EventLog

    frame = _events([("l1", "demo_request", "2024-06-01"), ("l2", "pricing_page_view", "2024-06-02"),
                     ("l3", "demo_request", "2024-06-03"), ("l1", "webinar_attended", "2024-06-04")])
    # Two row groups with dictionaries of their own (ingest's share one): the codes are mapped onto one log.
    path = tmp_path / "events.parquet"
    tables = [pa.Table.from_pandas(rows.astype({"event_key": "category", "event_type": "category"}),
                                   preserve_index=False) for rows in (frame.iloc[:2], frame.iloc[2:])]
    with pq.ParquetWriter(path, tables[0].schema) as writer:
        for table in tables:
            writer.write_table(table.cast(tables[0].schema))
    read = EventLog.read(path)
    assert len(read.parts) == 2 and len(read) == 4
    as_of = pd.Series(pd.to_datetime(["2024-07-01"] * 3))
    keys = pd.Series(["l1", "l2", "l3"], dtype="string")
    def built(log: EventLog | pd.DataFrame) -> pd.DataFrame:
        return intent_features(keys, as_of, log, types=TYPES, windows=[30], half_life_days=HALF_LIFE)

    pd.testing.assert_frame_equal(built(read), built(frame))
    assert event_types(read, limit=2) == event_types(frame, limit=2) == ["demo_request", "pricing_page_view"]
    assert read.latest() == pd.Timestamp("2024-06-04")


def test_a_log_that_cannot_be_read_fails_with_the_file_named(tmp_path) -> None:
    from pipeline.errors import DataError
    from pipeline.features.events import PendingEventLog

    path = tmp_path / "events.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"events\.parquet: not a readable Parquet file"):
        PendingEventLog(path)
