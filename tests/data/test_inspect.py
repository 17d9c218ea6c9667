"""`leadscore inspect`: profiling an unseen export and drafting a source mapping that validates."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.cli import build_parser, main
from pipeline.config import parse_settings
from pipeline.data.generate import FLAT_FILE
from pipeline.data.inspect import (
    Inspection,
    classify_outcome_value,
    draft_source,
    draft_yaml,
    inspect_file,
    normalise_header,
    parse_numbers,
    profile_column,
    snake_name,
)
from pipeline.errors import DataError
from pipeline.io.tables import sniff_delimiter
from tests.conftest import REPO

MAVEN = REPO.parent / "shared" / "data" / "maven_crm" / "sales_pipeline.csv"


def validated(result: Inspection) -> dict:
    """The draft, checked two ways: as a dict and as the YAML text written to disk."""
    draft = draft_source(result)
    parse_settings({"source": draft}, source="test")
    text = draft_yaml(result)
    assert text.startswith("# DRAFT")
    loaded = yaml.safe_load(text)
    assert loaded == {"source": draft}
    parse_settings(loaded, source="test")
    return draft


def flat_export(n: int = 240, seed: int = 7) -> pd.DataFrame:
    """A small export shaped like the generator's contacts_flat.csv."""
    rng = np.random.default_rng(seed)
    outcome = rng.choice(["1", "0", ""], size=n, p=[0.35, 0.45, 0.2])
    won, is_open = outcome == "1", outcome == ""
    views = rng.poisson(np.where(won, 4, 2))
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    decided = created + pd.to_timedelta(rng.integers(10, 90, n), unit="D")
    return pd.DataFrame({
        "Record ID": np.arange(1001, 1001 + n).astype(str),
        "First Name": rng.choice(["Ana", "Bo", "Cy", "Di", "Ed", "Flo", "Gus"], n),
        "Last Name": rng.choice(["Smith", "Jones", "Ng", "Diaz", "Kim", "Olsen"], n),
        "Email": [f"user{i}@example{i % 9}.com" for i in range(n)],
        "Phone Number": [f"+1 555-{rng.integers(100, 999)}-{rng.integers(1000, 9999)}" for _ in range(n)],
        "Company Name": [f"Company {i} Ltd" for i in range(n)],
        "Job Title": [f"{rng.choice(['VP', 'Head', 'Manager'])} of {rng.choice(['Sales', 'IT', 'Ops'])} {i % 40}"
                      for i in range(n)],
        "Industry": rng.choice(["Software", "Retail", "Finance", "N/A"], n),
        "Number of Employees": [f"{v:,}" for v in rng.integers(5, 20_000, n)],
        "Annual Revenue": [f"${v:.1f}M" for v in rng.uniform(0.5, 90, n)],
        "Country/Region": rng.choice(["United States", "Germany", "France"], n),
        "Original Source": rng.choice(["Organic Search", "Paid Social", "Referral"], n),
        "Create Date": created.strftime("%m/%d/%Y"),
        "Budget": [f"${v:,}" for v in rng.integers(1, 100, n) * 1000],
        "Purchase Timeline": rng.choice(["0-3 months", "3-6 months", "6-12 months", "Select..."], n),
        "Need": rng.choice(["Reporting", "Automation", "Integration"], n),
        "Pricing Page Views (7d)": views.astype(str),
        "Pricing Page Views (30d)": (views + rng.poisson(2, n)).astype(str),
        "Demo Requests (30d)": rng.poisson(0.4, n).astype(str),
        "Days Since Last Activity": rng.integers(0, 120, n).astype(str),
        "Decision Date": np.where(is_open, "", decided.strftime("%m/%d/%Y")),
        "Customer Since": np.where(won, decided.strftime("%m/%d/%Y"), ""),
        "Closed Deal Amount": np.where(won, rng.integers(1000, 90_000, n).astype(str), ""),
        "Converted": outcome,
    })


@pytest.fixture
def flat_csv(tmp_path: Path) -> Path:
    path = tmp_path / "contacts_flat.csv"
    frame = flat_export()
    pd.concat([frame, frame.iloc[[3, 9]]]).to_csv(path, index=False)  # two duplicate rows, as real exports have
    return path


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(not MAVEN.exists(), reason="Maven CRM sample not available")
def test_maven_pipeline_is_drafted_as_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    export = Path(shutil.copy(MAVEN, data / "sales_pipeline.csv"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["inspect", str(export)]) == 0
    report = capsys.readouterr().out
    assert sorted(p.name for p in data.iterdir()) == ["sales_pipeline.csv"]  # nothing next to the input
    draft = yaml.safe_load((work / "sales_pipeline.source.yaml").read_text())["source"]
    parse_settings({"source": draft})
    primary = draft["primary"]
    assert primary["outcome"] == {"column": "deal_stage", "won": ["Won"], "lost": ["Lost"],
                                  "open": ["Engaging", "Prospecting"]}
    assert primary["id"] == "opportunity_id"
    assert primary["decision_date"] == {"column": "close_date", "format": "%m/%d/%Y"}
    assert primary["created_date"] == {"column": "engage_date", "format": "%m/%d/%Y"}
    assert draft["never_use"] == {"close_date": "outcome_derived", "close_value": "outcome_derived"}
    mapped = {c["column"] for c in primary["columns"].values()}
    assert mapped == {"sales_agent", "product", "account"}
    assert "ROC AUC 1.000" in report and "deal_stage" in report


# ---------------------------------------------------------------- a flat export


def test_generated_flat_export_is_drafted_as_expected(small) -> None:
    result = inspect_file(small.settings.paths.raw / FLAT_FILE)  # what `leadscore generate` writes beside the tables
    draft = validated(result)
    primary = draft["primary"]
    assert primary["outcome"] == {"column": "Converted", "won": ["1"], "lost": ["0"], "open": [""]}
    assert primary["id"] == "Record ID"
    assert primary["decision_date"]["column"] == "Decision Date"
    assert primary["created_date"]["column"] == "Create Date"
    never = draft["never_use"]
    assert {c for c, why in never.items() if why == "pii"} == {"First Name", "Last Name", "Email", "Phone Number"}
    assert {c for c, why in never.items() if why == "outcome_derived"} == {
        "Decision Date", "Customer Since", "Closed Deal Amount"}
    assert never["Company Name"] == "other"
    assert {c["column"] for c in primary["columns"].values()}.isdisjoint(never)


def test_flat_export_outcome_id_dates_pii_and_leakage(flat_csv: Path) -> None:
    result = inspect_file(flat_csv)
    draft = validated(result)
    primary = draft["primary"]
    assert primary["outcome"] == {"column": "Converted", "won": ["1"], "lost": ["0"], "open": [""]}
    assert primary["id"] == "Record ID"
    assert any("Record ID: 2 rows repeat an id" in n for n in result.notes)
    assert primary["decision_date"] == {"column": "Decision Date", "format": "%m/%d/%Y"}
    assert primary["created_date"] == {"column": "Create Date", "format": "%m/%d/%Y"}
    assert draft["never_use"] == {
        "First Name": "pii", "Last Name": "pii", "Email": "pii", "Phone Number": "pii",
        "Company Name": "other", "Decision Date": "outcome_derived", "Customer Since": "outcome_derived",
        "Closed Deal Amount": "outcome_derived",
    }
    assert "filled only for won rows" in result.never_use["Customer Since"].why
    assert "blank exactly when the deal is open" in result.never_use["Decision Date"].why
    columns = primary["columns"]
    assert {name: c["column"] for name, c in columns.items() if len(c) == 1} == {
        "job_title": "Job Title", "industry": "Industry", "employees": "Number of Employees",
        "annual_revenue": "Annual Revenue", "country": "Country/Region", "lead_source": "Original Source",
        "stated_budget": "Budget", "purchase_timeline": "Purchase Timeline", "stated_need": "Need",
    }
    assert columns["pricing_page_views_7d"] == {"column": "Pricing Page Views (7d)", "kind": "numeric",
                                                "role": "intent"}
    assert columns["days_since_last_activity"]["role"] == "intent"
    assert "Select..." in draft["missing_values"]  # seen in the file, so ingest treats it as blank too
    assert result.profile("Industry").null_share > 0.1  # N/A counts as blank


def test_flat_export_as_parquet_and_semicolons(tmp_path: Path) -> None:
    frame = flat_export(n=120)
    frame.to_parquet(tmp_path / "flat.parquet")
    frame.to_csv(tmp_path / "flat.csv", sep=";", index=False)
    for name in ("flat.parquet", "flat.csv"):
        result = inspect_file(tmp_path / name)
        draft = validated(result)
        assert draft["primary"]["outcome"]["column"] == "Converted"
        assert draft["never_use"]["Closed Deal Amount"] == "outcome_derived"
    assert draft["primary"]["delimiter"] == ";"
    assert result.profile("Create Date").date_format == "%m/%d/%Y"


def test_pii_examples_are_not_printed(flat_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["inspect", str(flat_csv), "--output", str(tmp_path / "draft.yaml"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "@example" not in out and "+1 555" not in out
    assert "(hidden: personal data)" in out


# ---------------------------------------------------------------- malformed input


def test_a_line_with_the_wrong_number_of_fields_is_left_out_and_said(tmp_path: Path) -> None:
    # The same reader as ingest's: the line is skipped (ingest quarantines it), the rest is profiled.
    path = write(tmp_path / "export.csv", "a,b\n1,2\n3,4,5,6\n5,6\n")
    result = inspect_file(path)
    assert result.rows == 2
    assert any("wrong number of fields" in note and "line 3" in note for note in result.notes)


@pytest.mark.parametrize(("content", "message"), [
    (None, "file not found"),
    (b"", "is empty"),
    (b"a,b,c\n", "has a header but no data rows"),
    (b"\x00\x01\x02\xff\xfe binary \x00\x00" * 40, "binary"),
    (b"PK\x03\x04" + b"\x00" * 100, "Excel workbook"),
    (b"\n\n", "is empty"),
    (b",,\n1,2,3\n", "no header row"),
])
def test_unreadable_files_exit_3_with_a_message(tmp_path: Path, capsys, content: bytes | None,
                                                message: str) -> None:
    path = tmp_path / "export.csv"
    if content is not None:
        path.write_bytes(content)
    assert main(["inspect", str(path), "--output", str(tmp_path / "out.yaml")]) == 3
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.yaml").exists()
    with pytest.raises(DataError):
        inspect_file(path)


def test_semicolons_bom_and_latin1(tmp_path: Path) -> None:
    rows = "Id;Stage;Région;Amount\n" + "".join(
        f"{i};{'Won' if i % 3 else 'Lost'};{'Zürich' if i % 2 else 'Genève'};{i * 10}\n" for i in range(1, 40))
    cases = {"semi.csv": ("utf-8", ";", None), "bom.csv": ("utf-8-sig", ";", "utf-8-sig"),
             "latin.csv": ("latin-1", ";", "latin-1")}
    for name, (encoding, delimiter, drafted) in cases.items():
        result = inspect_file(write(tmp_path / name, rows, encoding))
        draft = validated(result)
        assert result.delimiter == delimiter
        assert draft["primary"].get("encoding") == drafted
        assert [c.name for c in result.columns] == ["Id", "Stage", "Région", "Amount"]
        assert draft["primary"]["outcome"]["column"] == "Stage"
        assert draft["primary"]["id"] == "Id"
        assert result.profile("Région").examples[:2] == ("Zürich", "Genève")


def test_cp1252_curly_quotes_and_tab_delimiter(tmp_path: Path) -> None:
    rows = "Name of deal\tOutcome\tNotes\n" + "".join(
        f"D{i}\t{'Closed Won' if i % 2 else 'Closed Lost'}\tCustomer’s note {i % 5}\n" for i in range(30))
    result = inspect_file(write(tmp_path / "tab.csv", rows, "cp1252"))
    validated(result)
    assert (result.delimiter, result.encoding) == ("\t", "cp1252")
    assert result.outcome is not None and result.outcome.won == ("Closed Won",)


def test_all_blank_column_and_single_column(tmp_path: Path) -> None:
    rows = "deal_id,stage,empty_col,size\n" + "".join(
        f"{i},{'Won' if i % 2 else 'Lost'},{'N/A' if i % 3 else ''},{i}\n" for i in range(20))
    result = inspect_file(write(tmp_path / "blank.csv", rows))
    draft = validated(result)
    assert result.profile("empty_col").kind == "empty" and result.profile("empty_col").null_share == 1
    assert draft["never_use"]["empty_col"] == "other"
    assert "size" in draft["primary"]["columns"]

    single = inspect_file(write(tmp_path / "single.csv", "Company\nAcme\nGlobex\nInitech\n"))
    draft = validated(single)  # no outcome: the draft carries a placeholder to edit
    assert single.outcome is None and draft["primary"]["outcome"]["column"].startswith("EDIT")
    assert any("no outcome column" in n for n in single.notes)


def test_only_outcome_column(tmp_path: Path) -> None:
    result = inspect_file(write(tmp_path / "o.csv", "Stage\nWon\nLost\nOpen\nWon\n"))
    draft = validated(result)
    assert draft["primary"]["outcome"]["open"] == ["Open"] and draft["primary"]["columns"] == {}


# ---------------------------------------------------------------- pieces


def test_numbers_dates_and_booleans_are_recognised() -> None:
    parsed = parse_numbers(pd.Series(["1,200", "$3.5M", "-7", "12%", "abc", "1,2"]))
    assert parsed.iloc[:4].tolist() == [1200.0, 3_500_000.0, -7.0, 12.0]
    assert parsed.iloc[4:].isna().all()

    def kind(*values: str) -> tuple[str, str | None]:
        p = profile_column("x", pd.Series(list(values) * 4, dtype=str))
        return p.kind, p.date_format

    assert kind("1,200", "$3.5M", "7") == ("numeric", None)
    assert kind("2024-01-31", "2024-02-01") == ("date", "%Y-%m-%d")
    assert kind("1/31/2024", "12/1/2024") == ("date", "%m/%d/%Y")
    assert kind("31/01/2024", "13/12/2024") == ("date", "%d/%m/%Y")
    assert kind("2024-01-31 10:00:00", "2024-02-01 23:59:59") == ("date", "%Y-%m-%d %H:%M:%S")
    assert kind("1/31/2024 10:00", "2/1/2024 09:30") == ("date", "%m/%d/%Y %H:%M")
    assert kind("Yes", "no") == ("boolean", None)
    assert kind("a", "b", "-", "") == ("categorical", None)
    ambiguous = profile_column("d", pd.Series(["01/02/2024", "03/04/2024"], dtype=str))
    assert ambiguous.date_format == "%m/%d/%Y" and "%d/%m/%Y" in ambiguous.date_alternatives


def test_outcome_values_headers_and_delimiters() -> None:
    assert classify_outcome_value("Closed-Won") == ("won", True)
    assert classify_outcome_value("closed lost") == ("lost", True)
    assert classify_outcome_value("Not Converted") == ("lost", True)
    assert classify_outcome_value("yes") == ("won", False)
    assert classify_outcome_value("Negotiation") == (None, False)
    assert normalise_header("Country/Region") == "country region"
    assert snake_name("Pricing Page Views (7d)") == "pricing_page_views_7d"
    assert snake_name("7-day visits") == "col_7_day_visits"
    assert snake_name("dealStage") == "deal_stage"
    assert sniff_delimiter('a|b|c\n1|"x|y"|3\n') == "|"
    assert sniff_delimiter("only\n1\n2\n") == ","


def test_yes_no_columns_are_not_outcomes_without_an_outcome_header(tmp_path: Path) -> None:
    rows = "id,Opted Out,Status\n" + "".join(f"{i},{'Yes' if i % 2 else 'No'},{'Won' if i % 3 else 'Lost'}\n"
                                            for i in range(30))
    result = inspect_file(write(tmp_path / "f.csv", rows))
    assert result.outcome is not None and result.outcome.column == "Status"
    assert result.fields["opted_out"].kind == "boolean"


# ---------------------------------------------------------------- command line


def test_cli_lists_inspect_and_needs_no_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                               flat_csv: Path) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "inspect" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["inspect", "x.csv", "--params", "p.yaml"])
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "drafts"
    assert main(["inspect", str(flat_csv), "--output", str(out_dir / "d.yaml"), "--delimiter", ",",
                 "--encoding", "utf-8"]) == 0
    assert (out_dir / "d.yaml").exists()
    assert main(["inspect", str(flat_csv), "--output", str(flat_csv)]) == 2  # never overwrites the input
    assert main(["inspect", str(flat_csv), "--encoding", "klingon"]) == 2
    assert "unknown encoding" in capsys.readouterr().err


def test_salesforce_like_export_flags_status_columns_and_loss_reasons(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 300
    stage = rng.choice(["Closed Won", "Closed Lost", "Prospecting", "Negotiation"], n)
    closed = np.isin(stage, ["Closed Won", "Closed Lost"])
    frame = pd.DataFrame({
        "Opportunity ID": [f"006{i:05d}X" for i in range(n)],
        "Stage": stage,
        "IsClosed": np.where(closed, "true", "false"),
        "Forecast Category": np.where(closed, "Closed", rng.choice(["Pipeline", "Commit"], n)),
        "Loss Reason": np.where(stage == "Closed Lost", rng.choice(["Price", "Timing"], n), ""),
        "Lead Source": rng.choice(["Web", "Partner", "Event"], n),
        "Close Date": pd.Timestamp("2024-01-01").strftime("%Y-%m-%d"),
        "Created Date": "2023-06-01 10:00:00",
    })
    frame.to_csv(tmp_path / "opps.csv", index=False)
    result = inspect_file(tmp_path / "opps.csv")
    draft = validated(result)
    assert draft["primary"]["outcome"]["won"] == ["Closed Won"]
    assert draft["primary"]["id"] == "Opportunity ID"
    for column in ("IsClosed", "Forecast Category", "Loss Reason", "Close Date"):
        assert draft["never_use"][column] == "outcome_derived", column
    assert "filled only for lost rows" in result.never_use["Loss Reason"].why
    assert draft["primary"]["created_date"] == {"column": "Created Date", "format": "%Y-%m-%d %H:%M:%S"}
    assert draft["primary"]["columns"] == {"lead_source": {"column": "Lead Source"}}


def test_code_like_id_utf16_multiline_and_corrupt_parquet(tmp_path: Path) -> None:
    rows = "code,result,comment\n" + "".join(
        f'K{i:04d}Z,{"won" if i % 2 else "lost"},"line one\nline two {i % 4}"\n' for i in range(30))
    result = inspect_file(write(tmp_path / "multi.csv", rows))
    assert result.id_column == "code" and result.rows == 30
    assert result.profile("comment").examples[0] == "line one line two 0"
    validated(result)

    utf16 = inspect_file(write(tmp_path / "u16.txt", "Stage\tAmount\nWon\t1\nLost\t2\nWon\t3\n", "utf-16"))
    assert (utf16.encoding, utf16.delimiter) == ("utf-16", "\t")
    assert utf16.id_column is None  # 1, 2, 3 are not an id without an id-like header
    validated(utf16)

    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        inspect_file(tmp_path / "bad.parquet")


def test_headers_pandas_renames_are_left_out_and_close_time_headers_flagged(tmp_path: Path) -> None:
    rows = "Deal Id,Stage,Email,,Email,Last Modified Date,Amount\n" + "".join(
        f"{i},{'Won' if i % 2 else 'Lost'},a{i}@x.io,?,b{i}@x.io,2024-01-0{i % 9 + 1},\"3,5\"\n" for i in range(30))
    result = inspect_file(write(tmp_path / "h.csv", rows))
    draft = validated(result)
    assert [c.name for c in result.columns] == ["Deal Id", "Stage", "Email", "Last Modified Date", "Amount"]
    assert any("headers appear more than once: Email" in n for n in result.notes)
    assert any("no header" in n for n in result.notes)
    assert any("decimal commas" in n for n in result.notes)
    assert draft["never_use"]["Last Modified Date"] == "outcome_derived"
    assert "by its header" in result.never_use["Last Modified Date"].why


def test_drafts_ingest(tmp_path: Path, flat_csv: Path) -> None:
    """The point of a draft: ingest reads the export with it, unedited."""
    from pipeline.data.ingest import ingest

    exports = [flat_csv]
    if MAVEN.exists():
        exports.append(Path(shutil.copy(MAVEN, tmp_path / "sales_pipeline.csv")))
    for export in exports:
        result = inspect_file(export)
        ingested = ingest(parse_settings({"source": validated(result)}).source)
        report = ingested.report["primary"]
        assert report.rows_read == result.rows
        assert report.rows_kept >= result.rows - 2  # the flat fixture has two duplicate ids
        assert {f.name for f in ingested.fields} == set(result.fields)
