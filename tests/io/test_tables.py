"""The one reader of exports and batches (TableReader): the checks before any row, malformed lines
kept with their line number, headers, encodings and delimiters, CSV and Parquet alike."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import ConfigError, DataError
from pipeline.io.tables import TableReader


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_a_line_with_the_wrong_number_of_fields_is_skipped_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", 'a,b,c\n1,2,3\n4,5\n6,7,8,9\n"multi\nline",2,3\n10,11,12\n')
    reader = TableReader(path, blanks_null=False)
    table = reader.read()
    assert table.to_pydict() == {"a": ["1", "multi\nline", "10"], "b": ["2", "2", "11"], "c": ["3", "3", "12"]}
    assert [(m.line, m.text, m.reason) for m in reader.malformed] == [
        (3, "4,5", "malformed line: expected 3 fields, found 2"),
        (4, "6,7,8,9", "malformed line: expected 3 fields, found 4")]


def test_chunks_cover_every_row_once_in_order(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 2}" for i in range(1000))
    path = _write(tmp_path / "x.csv", "a,b\n" + rows + "\n")
    chunks = list(TableReader(path).frames(97))
    assert [len(c) for c in chunks] == [97] * 10 + [30]
    assert pd.concat(chunks)["a"].astype(int).tolist() == list(range(1000))


def test_blanks_are_null_or_empty_text_as_asked(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "a,b\n1,\n,2\n")
    assert TableReader(path).read().to_pydict() == {"a": ["1", None], "b": [None, "2"]}
    assert TableReader(path, blanks_null=False).read().to_pydict() == {"a": ["1", ""], "b": ["", "2"]}


def test_repeated_and_blank_headers_are_refused_or_dropped_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "a,a,,b\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"primary: .*x\.csv has duplicate column header\(s\): a"):
        TableReader(path, label="primary")
    reader = TableReader(path, repeated_headers="drop")
    assert reader.read().to_pydict() == {"a": ["1"], "b": ["4"]}
    assert any("more than once: a" in n for n in reader.notes) and any("no header" in n for n in reader.notes)


def test_columns_limit_what_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "a,b,c\n1,2,3\n")
    reader = TableReader(path, columns=["c", "a", "missing"])
    assert reader.columns == ["c", "a"] and reader.header == ["a", "b", "c"]
    assert set(reader.read().column_names) == {"a", "c"}


@pytest.mark.parametrize(("content", "message"), [
    (None, r"input: file not found: .*x\.csv"),
    (b"", r"x\.csv is empty"),
    (b"\n \n", r"x\.csv is empty"),
    (b",,\n1,2,3\n", r"x\.csv has no header row"),
    (b"PK\x03\x04" + b"\x00" * 64, "looks like an Excel workbook or a zip archive"),
    (b"\x1f\x8b\x08" + b"\x00" * 64, "gzip-compressed but damaged"),
    (b"a,b\n\x00\x01\x02\x03\x04\x05\x06" * 20, "binary"),
])
def test_a_file_that_cannot_be_read_names_itself_and_why(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        TableReader(path, label="input")


def test_a_gzip_compressed_csv_reads_as_its_text(tmp_path: Path) -> None:
    """Class 7 rule (with class 4): a .csv.gz, as `score --output x.csv.gz` writes, reads like the CSV inside."""
    text = "name,city\nRenée,Zürich\nBob,NA\n"
    plain, packed = _write(tmp_path / "x.csv", text), tmp_path / "x.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert TableReader(packed).read().equals(TableReader(plain).read())


def test_text_in_another_encoding_names_the_fix_and_reads_when_given(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "name,city\nRenée,Zürich\n", encoding="latin-1")
    with pytest.raises(DataError, match="is not valid utf-8 text; save it as UTF-8"):
        TableReader(path, encoding_fix="save it as UTF-8").read()
    assert TableReader(path, encoding="latin-1").read().to_pydict() == {"name": ["Renée"], "city": ["Zürich"]}
    detected = TableReader(path, encoding=None)
    assert detected.encoding == "latin-1" and detected.read().to_pydict()["city"] == ["Zürich"]
    with pytest.raises(ConfigError, match="unknown encoding 'klingon'"):
        TableReader(path, encoding="klingon")


def test_a_bom_and_the_delimiter_are_handled(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "\ufeffa;b\n1;2\n")
    assert TableReader(path, delimiter=";").header == ["a", "b"]
    sniffed = TableReader(path, delimiter=None)
    assert sniffed.delimiter == ";" and sniffed.read().to_pydict() == {"a": ["1"], "b": ["2"]}


def test_parquet_files_and_folders_read_as_stored(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]})
    frame.to_parquet(tmp_path / "one.parquet")
    assert TableReader(tmp_path / "one.parquet").read().to_pydict() == {"a": [1.5, None], "b": ["x", "y"]}
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        frame.assign(b=[f"{i}x", f"{i}y"]).to_parquet(folder / f"part-{i}.parquet")
    reader = TableReader(folder)
    assert reader.format == "parquet" and reader.total_rows == 6
    assert pd.concat(reader.frames(4))["b"].tolist() == ["0x", "0y", "1x", "1y", "2x", "2y"]
    with pytest.raises(DataError, match="is a folder, not a file"):
        TableReader(folder, folders=False)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        TableReader(tmp_path / "broken.parquet")
