"""Class 4 of issue 18: the same file reads the same way, whatever the reader or the chunk.

Undecodable only on real invalid bytes (never on a sample or block boundary), cell size never
decides whether a file reads, and no text is taken as missing but an empty cell: "NA", "null" or
"N/A" are values, in CSV as in Parquet."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.contracts.features import FeatureSpec
from pipeline.data.inspect import read_table as inspect_table
from pipeline.data.parsing import clean_text
from pipeline.errors import DataError
from pipeline.io.tables import BLOCK_BYTES, MISSING_CELLS, SAMPLE_BYTES, TableReader, detect_encoding
from pipeline.modeling.model import prepare_matrix
from tests.conftest import score_with
from tests.data.test_ingest import HEADER, ROWS, run_flat

MULTIBYTE = "éüßñçø中文字한국어😀🎉👍🏽Ωж"
CELL = st.text(alphabet=st.sampled_from(MULTIBYTE + "ab ,\"\n"), max_size=12)
# Every token pandas or pyarrow would take as missing by default, and blank-looking ones.
NA_TOKENS = ["NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", "-nan", "-NaN", "None", "#N/A", "#NA", "#N/A N/A",
             "1.#IND", "1.#QNAN", "-1.#IND", "<NA>", "none", " "]


def _python_rows(path: Path) -> list[list[str]]:
    """The file as pure Python's csv module reads its whole decoded text: the reference."""
    text = path.read_bytes().decode("utf-8-sig")
    return [r for r in csv.reader(io.StringIO(text, newline=""))][1:]


def _reader_rows(reader: TableReader) -> list[list[str]]:
    table = reader.read()
    columns = [table.column(c).to_pylist() for c in table.column_names]
    return [list(r) for r in zip(*columns, strict=True)]


def _straddling_file(path: Path, *, boundary: int, shift: int, cells: list[str], bom: bool) -> None:
    """ASCII rows up to ``shift`` bytes before ``boundary``, then rows of multi-byte ``cells``."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "note"])
    head = (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()
    filler = boundary - shift - len(head) - len("0,,\n")
    pad = b"".join(f"{i},{'x' * 60},pad\n".encode() for i in range(filler // 68))
    last = filler - len(pad)
    body = io.StringIO(newline="")
    writer = csv.writer(body, lineterminator="\n")
    for i, cell in enumerate(cells):
        writer.writerow([f"m{i}", cell, cell[::-1]])
    path.write_bytes(head + pad + f"0,{'y' * last},\n".encode() + body.getvalue().encode())


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(boundary=st.sampled_from([SAMPLE_BYTES, 1 << 20, BLOCK_BYTES]), shift=st.integers(0, 6),
       cells=st.lists(CELL, min_size=1, max_size=4), bom=st.booleans())
def test_multibyte_text_on_any_chunk_boundary_reads_as_the_whole_text(tmp_path_factory: pytest.TempPathFactory,
                                                                       boundary: int, shift: int,
                                                                       cells: list[str], bom: bool) -> None:
    """class 4 rule: a file is judged undecodable only on real invalid bytes, never on a chunk boundary;
    every reader reads the same bytes the same way."""
    path = tmp_path_factory.mktemp("boundary") / "export.csv"
    _straddling_file(path, boundary=boundary, shift=shift, cells=cells, bom=bom)
    expected = _python_rows(path)
    assert detect_encoding(path) == ("utf-8-sig" if bom else "utf-8")
    for encoding in ("utf-8", None):
        for delimiter in (",", None):
            reader = TableReader(path, encoding=encoding, delimiter=delimiter, blanks_null=False)
            assert _reader_rows(reader) == expected
    profiled = inspect_table(path).frame
    assert profiled["name"].tolist() == [r[1] for r in expected]


def test_an_invalid_byte_past_the_sample_is_still_found(tmp_path: Path) -> None:
    """class 4 rule: undecodable means a real invalid byte, wherever it is; each reader says so."""
    path = tmp_path / "export.csv"
    path.write_bytes(b"id,name\n" + b"1,abc\n" * 20000 + b"2,caf\xe9\n")
    assert detect_encoding(path) == "latin-1"
    with pytest.raises(DataError, match="not valid utf-8"):
        TableReader(path, encoding="utf-8").read()
    assert TableReader(path, encoding=None).read().column("name").to_pylist()[-1] == "café"


@pytest.mark.parametrize("cell_mb", [3, 12])
def test_a_huge_cell_in_an_unused_column_does_not_refuse_the_export(tmp_path: Path, cell_mb: int) -> None:
    """class 4 rule: cell size does not decide whether a file can be read (the parse grows its blocks)."""
    filler = [f"{i},Lost,2024-04-01,2024-02-01,Retail,5,no,Intern,{'n' * 200}" for i in range(10, 20000)]
    big = "b" * (cell_mb << 20)
    rows = [f"{r},short" for r in ROWS] + filler + [f"9,Won,2024-03-01,2024-01-05,Software,1,yes,VP,{big}"]
    result = run_flat(tmp_path, rows, header=HEADER + ",notes")
    assert len(result.records) == len(rows)
    assert "9" in set(result.records["record_id"])
    assert not len(result.quarantine)


@pytest.mark.parametrize("token", NA_TOKENS)
def test_default_na_tokens_are_values_in_every_reader(tmp_path: Path, token: str) -> None:
    """class 4 rule: pyarrow/pandas default NA tokens are never applied: only an empty cell is missing."""
    frame = pd.DataFrame({"record_id": ["1", "2", "3"], "region": [token, None, "EMEA"]})
    csv_path, parquet_path = tmp_path / "x.csv", tmp_path / "x.parquet"
    pacsv.write_csv(pa.Table.from_pandas(frame), csv_path)
    frame.to_parquet(parquet_path)
    for path in (csv_path, parquet_path):
        for blanks_null in (True, False):
            read = TableReader(path, blanks_null=blanks_null, text=True).read().column("region").to_pylist()
            assert read[0] == token and read[2] == "EMEA", (path.name, blanks_null)
            assert read[1] in ((None,) if blanks_null or path.suffix == ".parquet" else ("",))
    assert MISSING_CELLS == ("",)


def test_a_quoted_empty_string_is_a_value_and_an_empty_cell_is_missing(tmp_path: Path) -> None:
    """class 4 rule: token-to-missing is declared (MISSING_CELLS): an unquoted empty cell, never a quoted ""."""
    path = tmp_path / "x.csv"
    path.write_text('record_id,region\n1,""\n2,\n3,NA\n')
    assert TableReader(path).read().column("region").to_pylist() == ["", None, "NA"]


LEVELS = ["NA", "null", "None", "N/A", "nan", "#N/A", "-nan", "NaN", "", "emea", "1"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from([*LEVELS, "unseen", None]),
                          st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False))), min_size=1, max_size=12))
def test_csv_and_parquet_feature_matrices_prepare_the_same(tmp_path_factory: pytest.TempPathFactory,
                                                           rows: list[tuple[str | None, float | None]]) -> None:
    """class 4 rule: for any level the model knows ("NA", "null", "" ...), a CSV and a Parquet feature
    matrix of the same rows give the same prepared matrix, and a known level is never made missing."""
    folder = tmp_path_factory.mktemp("matrix")
    frame = pd.DataFrame({"record_id": [str(i) for i in range(len(rows))],
                          "region": pd.Series([r[0] for r in rows], dtype="string"),
                          "employees": pd.Series([r[1] for r in rows], dtype="float64")})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / "m.parquet")
    pacsv.write_csv(table, folder / "m.csv", write_options=pacsv.WriteOptions(quoting_style="needed"))
    specs = [FeatureSpec("region", "categorical", "firmographic", "region", "Region"),
             FeatureSpec("employees", "numeric", "firmographic", "employees", "Employees")]
    levels = {"region": sorted(LEVELS)}
    prepared = []
    for name in ("m.csv", "m.parquet"):
        reader = TableReader(folder / name, label="input", columns=["record_id", "region", "employees"])
        chunks = [prepare_matrix(f, specs=specs, levels=levels) for f in reader.frames(5)]
        prepared.append(pd.concat(chunks, ignore_index=True))
    pd.testing.assert_frame_equal(prepared[0], prepared[1])
    known = frame["region"].isin(LEVELS).fillna(False).to_numpy(dtype=bool)
    assert prepared[0]["region"][known].astype(str).tolist() == frame["region"][known].tolist()
    assert prepared[0]["region"][~known].isna().all()
    np.testing.assert_array_equal(prepared[0]["employees"].to_numpy(), frame["employees"].to_numpy())


def test_a_parquet_category_stored_as_a_number_matches_its_level() -> None:
    """class 4 rule: the same value reads as the same level whatever the input's dtype."""
    specs = [FeatureSpec("size_band", "categorical", "firmographic", "size_band", "Size band")]
    levels = {"size_band": ["1", "2", "NA"]}
    as_number = prepare_matrix(pd.DataFrame({"size_band": pd.array([1, 2, None], dtype="Int64")}), specs=specs,
                               levels=levels)
    as_text = prepare_matrix(pd.DataFrame({"size_band": ["1", "2", None]}), specs=specs, levels=levels)
    pd.testing.assert_frame_equal(as_number, as_text)


def test_ingest_applies_the_declared_missing_tokens_the_same_for_csv_and_parquet(tmp_path: Path) -> None:
    """class 4 rule: the declared source.missing_values are the one ingest list, the same for CSV and Parquet."""
    rows = [r.replace("Software", "NA", 1).replace("Retail", "null", 1) for r in ROWS]
    from_csv = run_flat(tmp_path, rows)
    frame = pd.read_csv(tmp_path / "export.csv", dtype=str, keep_default_na=False)
    frame.to_parquet(tmp_path / "export.parquet")
    from_parquet = run_flat(tmp_path, rows, file="export.parquet")
    pd.testing.assert_frame_equal(from_csv.records, from_parquet.records)
    assert from_csv.records["industry"].isna().tolist()[:2] == [True, True]  # "na", "null": declared placeholders
    assert clean_text(pd.Series(["NA", "EMEA"]), frozenset({"na"})).isna().tolist() == [True, False]


def test_score_input_gives_the_same_scores_for_csv_and_parquet(small, models_dir: Path, open_rows: pd.DataFrame,
                                                               tmp_path: Path) -> None:
    """class 4 rule: CSV and Parquet inputs of the same rows score the same (no implicit NA tokens)."""
    rows = open_rows.head(60).copy()
    text = [c for c in rows.columns if rows[c].dtype == object or str(rows[c].dtype) in ("string", "str")]
    text = [c for c in text if c != "record_id"]
    for column in text[:3]:
        rows.loc[rows.index[::3], column] = "NA"
    parquet_path, csv_path = tmp_path / "in.parquet", tmp_path / "in.csv"
    rows.to_parquet(parquet_path)
    rows.to_csv(csv_path, index=False)
    got, drifts = [], []
    for source in (parquet_path, csv_path):
        output = tmp_path / f"out_{source.suffix[1:]}.parquet"
        summary = score_with(small, models_dir, source, output, chunk_rows=25)
        assert summary.rows_out == len(rows)
        got.append(pd.read_parquet(output).drop(columns=["scored_at"]))
        assert summary.drift_path is not None
        drifts.append(json.loads(summary.drift_path.read_text()))
    assert text, "the open rows have text features to write NA into"
    pd.testing.assert_frame_equal(got[0], got[1], check_dtype=False)
    assert drifts[0] == drifts[1]


def test_score_input_refuses_a_list_feature_column_naming_it(small, models_dir: Path, open_rows: pd.DataFrame,
                                                             tmp_path: Path) -> None:
    """class 2 rule (score reader): a list column a feature needs fails fast, naming the column and its type."""
    rows = open_rows.head(5).copy()
    rows["employees"] = [[1.0, 2.0]] * len(rows)
    source = tmp_path / "in.parquet"
    rows.to_parquet(source)
    with pytest.raises(DataError, match=r"employees \(list<"):
        score_with(small, models_dir, source, tmp_path / "out.csv")
