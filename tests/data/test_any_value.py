"""Class 2 of the hardening corpus, as a property: no cell value is an internal error.

The rule: whatever text a CRM puts in any mapped column (any Unicode, CRM placeholders such as
9999-12-31, overflowing numbers, offsets on timestamps, outcome words), ingest ends with every row
kept, blanked where a value can't be read, or quarantined with its reason (rows read = kept +
quarantined), or stops with a DataError naming the problem; and the features build on what it kept."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_settings
from pipeline.data.ingest import ingest
from pipeline.errors import DataError
from pipeline.stages.features import featurise
from tests.data.test_ingest import HEADER, flat_source

REAL_VALUES = ["9999-12-31", "0001-01-01", "2024-02-30", "-1e309", "1e400", "nan", "inf", "-0", "١٢٣", "１２",
               "$-3.5M", "12%", "(5)", "TRUE", "是", "🎉", "Won", "Lost", "Open", "2024-03-01T10:00:00+02:00",
               "2024-03-01T10:00:00Z", "2024-03-01", "=cmd|' /C calc'!A0", "NA", "null", " ", "\u200b"]
CELL = st.one_of(st.text(max_size=12), st.sampled_from(REAL_VALUES))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.lists(CELL, min_size=8, max_size=8), min_size=1, max_size=6))
def test_property_no_cell_value_is_an_internal_error(rows: list[list[str]]) -> None:
    """Class 2 property: random and real-world cell values never raise anything but a DataError, and
    every row read is kept or quarantined."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerows([HEADER.split(","), ["1", "Won", "2024-03-01", "2024-01-05", "Software", "10", "yes", "VP"],
                          ["2", "Lost", "2024-04-01", "2024-02-01", "Retail", "5", "no", "CEO"], *rows])
        (root / "export.csv").write_text(text.getvalue(), encoding="utf-8")
        try:
            result = ingest(parse_settings({"source": flat_source(root)}).source)
        except DataError:
            return
        for name, r in result.report.items():
            assert r.rows_read == r.rows_kept + r.rows_quarantined, name
        assert result.report["primary"].rows_read == len(rows) + 2
        try:
            made = featurise(result.records, result.events, result.fields, settings=parse_settings({}),
                             clock=result.clock)
        except DataError as error:  # e.g. a value that looks personal: refused by name, never a crash
            assert str(error)
            return
        assert made.matrix["record_id"].tolist() == result.records["record_id"].tolist()
