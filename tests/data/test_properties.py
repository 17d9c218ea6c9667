"""Property tests (hypothesis): random values never make a parser or ingest raise, and ingest keeps
rows in = rows kept + quarantined."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.data.parsing import clean_text, parse_boolean, parse_dates, parse_number
from pipeline.errors import LeadscoreError
from tests.data.test_ingest import HEADER, run_flat
from tests.strategies import CELLS, COLUMNS, FAST


@FAST
@given(COLUMNS)
def test_parsers_keep_every_row_and_never_raise(values: list[str]) -> None:
    series = pd.Series(values, dtype=object)
    for parse in (parse_number, parse_boolean, clean_text, lambda v: parse_dates(v, None),
                  lambda v: parse_dates(v, "%Y-%m-%d")):
        out = parse(series)
        assert len(out) == len(series) and out.index.equals(series.index)


@FAST
@given(st.lists(st.lists(CELLS, min_size=0, max_size=10), min_size=1, max_size=15),
       st.sets(st.sampled_from(["industry", "employees", "demo_booked", "title"]), max_size=3))
def test_ingest_rows_in_equal_rows_kept_plus_quarantined(rows: list[list[str]], dropped: set[str]) -> None:
    header = [c for c in HEADER.split(",") if c not in dropped]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, row in enumerate(rows):  # an id and an outcome most of the time, random cells elsewhere
        cells = [str(i), ["Won", "Lost", "Open"][i % 3], *row][: len(header)]
        writer.writerow(cells + [""] * (len(header) - len(cells)) if i % 4 else row[: len(header) + 1])
    columns = {"industry": {"column": "industry"}, "employees": {"column": "employees"},
               "demo_booked": {"column": "demo_booked", "kind": "boolean", "role": "intent"},
               "job_title": {"column": "title"}}
    kept = {k: v for k, v in columns.items() if v["column"] not in dropped}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = run_flat(Path(tmp), buffer.getvalue().splitlines(), header=",".join(header), columns=kept)
        except LeadscoreError:
            return  # a clear error (no usable rows, one outcome class, ...) is an allowed outcome
    for name, report in result.report.items():
        assert report.rows_read == report.rows_kept + report.rows_quarantined, name
