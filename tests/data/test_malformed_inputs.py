"""A corpus of malformed exports. Each one ends in a clear error naming the problem, or in rows
quarantined with their reason: never a traceback, never a row silently dropped."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import ConfigError, parse_settings
from pipeline.contracts.features import FeatureSpec
from pipeline.data.ingest import IngestResult
from pipeline.errors import DataError
from pipeline.features.build import build_features
from pipeline.modeling.model import prepare_matrix
from tests.data.test_ingest import HEADER, ROWS, flat_source, run_flat


def _balanced(result: IngestResult) -> None:
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined, name
        assert r.rows_quarantined == int((result.quarantine["table"] == name).sum()), name


def _reasons(result: IngestResult) -> dict[int, str]:
    return dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True))


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace(",employees", ",staff")
    with pytest.raises(DataError, match=r"lacks column\(s\) employees named in the source mapping"):
        run_flat(tmp_path, ROWS, header=header)


def test_text_in_a_numeric_column_blanks_the_value_and_counts_it(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01,2024-02-01,a,a few,no,x"])
    assert pd.isna(result.records.set_index("record_id").loc["4", "employees"])
    assert result.report["primary"].values_blanked["employees: not a number"] == 1
    _balanced(result)


def test_garbage_in_a_boolean_column_is_counted(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01,2024-02-01,a,1,perhaps,x"])
    assert result.report["primary"].values_blanked["demo_booked: not yes/no"] == 1


def test_unparseable_decision_date_quarantines_the_row(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,31/02/2024,2024-02-01,a,1,no,x"])
    assert "unparseable date '31/02/2024' (expected %Y-%m-%d)" in _reasons(result)[5]
    _balanced(result)


def test_unparseable_optional_date_is_blanked_not_quarantined(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01,yesterday,a,1,no,x"])
    assert len(result.quarantine) == 0
    assert result.report["primary"].values_blanked["created_date: unparseable date (expected %Y-%m-%d)"] == 1


def test_empty_file_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"export\.csv is empty"):
        run_flat(tmp_path, [], raw=b"")


def test_header_only_file_says_there_are_no_outcomes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no won rows after validation \(no rows\)"):
        run_flat(tmp_path, [])


def test_only_one_outcome_class_stops_with_the_counts(tmp_path: Path) -> None:
    rows = [r for r in ROWS if ",Lost," not in r]
    with pytest.raises(DataError, match=r"no lost rows after validation \(won: 1, open: 1\)"):
        run_flat(tmp_path, rows)


def test_duplicate_ids_are_quarantined_pointing_at_the_first(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "2,Won,2024-04-01,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "duplicate id (first at line 3)"
    _balanced(result)


def test_an_id_written_with_inner_spaces_names_the_line_of_its_first_row(tmp_path: Path) -> None:
    """Ids are cleaned (trimmed, inner whitespace collapsed, case-folded) before duplicates are found;
    the reason names the first row's line from the id itself, never "?"."""
    rows = [*ROWS, "D 7,Won,2024-04-01,2024-02-01,a,1,no,x", " d  7 ,Lost,2024-04-02,2024-02-01,a,1,no,x"]
    result = run_flat(tmp_path, rows)
    assert _reasons(result)[6] == "duplicate id (first at line 5)"
    _balanced(result)


def test_missing_id_is_quarantined(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, ",Won,2024-04-01,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "missing id"


def test_utf8_bom_does_not_corrupt_the_first_header(tmp_path: Path) -> None:
    text = "\n".join([HEADER, *ROWS]) + "\n"
    result = run_flat(tmp_path, [], raw=b"\xef\xbb\xbf" + text.encode())
    assert result.records["record_id"].tolist() == ["1", "2", "3"]


def test_wrong_encoding_names_the_fix_and_the_right_one_works(tmp_path: Path) -> None:
    rows = [*ROWS, "4,Lost,2024-04-01,2024-02-01,Société Générale,1,no,Directeur"]
    with pytest.raises(DataError, match="is not valid utf-8 text; set its encoding"):
        run_flat(tmp_path, rows, write_encoding="latin-1")
    result = run_flat(tmp_path, rows, write_encoding="latin-1", encoding="latin-1")
    assert result.records.set_index("record_id").loc["4", "industry"] == "société générale"


def test_semicolon_delimiter_is_detected_in_the_error_and_works_when_declared(tmp_path: Path) -> None:
    rows = [r.replace('"1,200"', "1200").replace(",", ";") for r in ROWS]
    header = HEADER.replace(",", ";")
    with pytest.raises(DataError, match="looks delimited by ';': set delimiter: ';'"):
        run_flat(tmp_path, rows, header=header)
    assert len(run_flat(tmp_path, rows, header=header, delimiter=";").records) == 3


def test_malformed_lines_are_quarantined_with_their_text(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01", "5,Won,2024-04-01,2024-02-01,a,1,no,x,extra"])
    reasons = _reasons(result)
    assert reasons[5] == "malformed line: expected 8 fields, found 3"
    assert reasons[6] == "malformed line: expected 8 fields, found 9"
    assert len(result.records) == 3
    _balanced(result)


def test_binary_garbage_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"binary|cannot be parsed|not valid"):
        run_flat(tmp_path, [], raw=b"\x00\x01\x02\xff\xfe garbage \x00" * 50)


def test_missing_file_is_named(tmp_path: Path) -> None:
    source = parse_settings({"source": flat_source(tmp_path)}).source
    with pytest.raises(DataError, match=r"file not found: .*export\.csv"):
        from pipeline.data.ingest import ingest

        ingest(source)


def test_unmapped_outcome_value_is_quarantined_listing_the_mapping(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,On hold,2024-04-01,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "stage value 'On hold' maps to no outcome (won: 'Won'; lost: 'Lost'; open: 'Open')"


def test_closed_row_without_decision_date_is_quarantined(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Won,,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "missing closed on a closed (won or lost) row"


def test_decision_before_creation_is_quarantined(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Won,2023-01-01,2024-02-01,a,1,no,x"])
    assert _reasons(result)[5] == "closed '2023-01-01' is before created '2024-02-01'"


def test_values_outside_declared_bounds_are_blanked(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01,2024-02-01,a,-40,no,x"])
    assert result.report["primary"].values_blanked["employees: below 0"] == 1


def test_all_null_column_is_kept_and_featurised(tmp_path: Path) -> None:
    rows = [",".join([*r.split(",")[:4], "", "", "", ""]) for r in
            ["1,Won,2024-03-01,2024-01-05", "2,Lost,2024-04-01,2024-02-01", "3,Open,,2024-05-01"]]
    result = run_flat(tmp_path, rows)
    assert result.records["industry"].isna().all()
    defaults = parse_settings({})
    features = build_features(result.records, result.events, result.fields, params=defaults.features,
                              icp=defaults.icp, framework=defaults.qualification.framework)
    assert features.matrix["industry"].isna().all()
    assert (features.matrix["seniority"] == "unknown").all()


def test_duplicate_headers_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="duplicate column header"):
        run_flat(tmp_path, ROWS, header=HEADER.replace("title", "industry"))


def test_unseen_category_at_scoring_becomes_missing() -> None:
    spec = [FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry")]
    x = prepare_matrix(pd.DataFrame({"industry": ["aerospace"]}), specs=spec, levels={"industry": ["software"]})
    assert x["industry"].isna().all() and list(x["industry"].cat.categories) == ["software"]


def test_typo_in_the_source_mapping_is_named(tmp_path: Path) -> None:
    bad = flat_source(tmp_path)
    bad["primary"]["outcome"]["colum"] = "stage"
    with pytest.raises(ConfigError, match=r"source\.primary\.outcome\.colum: unknown key \(did you mean 'column'\?\)"):
        parse_settings({"source": bad})


def test_outcome_derived_column_cannot_be_a_feature(tmp_path: Path) -> None:
    bad = flat_source(tmp_path)
    bad["never_use"] = {"employees": "outcome_derived"}
    with pytest.raises(ConfigError, match="'employees' is declared never_use"):
        parse_settings({"source": bad})


def test_cli_ingest_of_a_broken_export_exits_3_without_a_traceback(tmp_path: Path, capsys) -> None:
    (tmp_path / "export.csv").write_text(HEADER.replace(",stage", ",status") + "\n" + "\n".join(ROWS) + "\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"source": flat_source(tmp_path),
                                      "paths": {"interim": str(tmp_path / "interim"),
                                                "ingest_report": str(tmp_path / "ingest.json")}}))
    assert main(["ingest", "--params", str(params)]) == 3
    err = capsys.readouterr().err
    assert "lacks column(s) stage" in err and "Traceback" not in err
    assert not (tmp_path / "interim").exists() or not any((tmp_path / "interim").iterdir())


def test_numbers_with_inf_or_nan_text_do_not_crash(tmp_path: Path) -> None:
    result = run_flat(tmp_path, [*ROWS, "4,Lost,2024-04-01,2024-02-01,a,inf,no,x",
                                 "5,Lost,2024-04-01,2024-02-01,a,NaN,no,x"])
    employees = result.records.set_index("record_id")["employees"]
    assert np.isnan(employees["4"]) and np.isnan(employees["5"])


def test_an_excel_workbook_named_as_the_export_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="looks like an Excel workbook or a zip archive; save or extract it as CSV"):
        run_flat(tmp_path, [], raw=b"PK\x03\x04" + b"\x14\x00" * 200)
