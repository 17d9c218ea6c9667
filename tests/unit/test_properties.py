"""Property tests (hypothesis) on the parsing, rule and scoring-input layers: random values and
random missing columns never raise an unhandled exception, and rows in = rows out + quarantined."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.parsing import clean_text, parse_boolean, parse_dates, parse_number
from pipeline.errors import LeadscoreError
from pipeline.features.qualification import evaluate_framework, load_framework
from tests.unit.test_ingest import HEADER, run_flat

CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "n/a", "NaN", "inf", "-inf", "1e309", "$3.5k", "1,200", "(12)", "12%", "yes", "NO",
                     "2024-02-30", "2024-01-05", "31/12/2024", "=1+1", "\x00", "null", "-0", "0x1F", "１２"]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
COLUMNS = st.lists(CELLS, min_size=0, max_size=25)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(COLUMNS)
def test_parsers_keep_every_row_and_never_raise(values: list[str]) -> None:
    series = pd.Series(values, dtype=object)
    for parse in (parse_number, parse_boolean, clean_text, lambda v: parse_dates(v, None),
                  lambda v: parse_dates(v, "%Y-%m-%d")):
        out = parse(series)
        assert len(out) == len(series) and out.index.equals(series.index)


FIELDS = ["budget_ratio", "seniority", "stated_need", "purchase_timeline", "icp_fit", "employees"]


@FAST
@given(st.data())
def test_framework_rules_on_random_values_and_missing_columns(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 12))
    present = data.draw(st.lists(st.sampled_from(FIELDS), unique=True))
    context = pd.DataFrame({f: data.draw(st.lists(st.one_of(st.none(), CELLS, st.floats()), min_size=n, max_size=n))
                            for f in present}, index=pd.RangeIndex(n))
    for name in ("bant", "champ", "meddic"):
        flags = evaluate_framework(context, load_framework(name))
        assert len(flags) == n
        statuses = flags[[c for c in flags.columns if c.startswith("fw_") and not c.endswith("_reason")]]
        assert set(np.unique(statuses.to_numpy().astype(str))) <= {"met", "not_met", "unknown"}


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


@FAST
@given(st.lists(st.one_of(st.none(), CELLS), min_size=1, max_size=30), st.lists(CELLS, min_size=1, max_size=30))
def test_scoring_quarantine_keeps_the_row_count(ids: list[str | None], numbers: list[str]) -> None:
    from pipeline.contracts.features import FeatureSpec
    from pipeline.scoring.scorer import quarantine_rows

    n = min(len(ids), len(numbers))
    chunk = pd.DataFrame({"record_id": ids[:n], "employees": numbers[:n]}, dtype=object)
    spec = FeatureSpec("employees", "numeric", "firmographic", "employees", "x")
    good, bad = quarantine_rows(chunk, [spec])
    assert len(good) + len(bad) == n
    assert bad["row"].between(1, n).all() and bad["reason"].str.len().gt(0).all()
