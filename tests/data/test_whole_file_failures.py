"""Class 3 of the hardening corpus: a whole-file failure shows its cause.

The rule every case checks: when validation leaves no usable rows (none at all, or no won or no
lost one), the error names the top quarantine reasons with their counts and what to check, and the
quarantine and the ingest report are still written (rows read = kept + quarantined), with no
earlier run's tables left beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import parse_settings
from pipeline.contracts.files import QUARANTINE_FILE, RECORDS_FILE
from pipeline.data.ingest import IngestFailed, ingest
from tests.data.test_ingest import HEADER, ROWS, flat_source


def _project(tmp_path: Path, lines: list[str], **source_keys) -> Path:
    (tmp_path / "export.csv").write_text("\n".join(lines) + "\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"source": {**flat_source(tmp_path), **source_keys}, "paths": {
        "interim": str(tmp_path / "interim"), "ingest_report": str(tmp_path / "ingest.json")}}))
    return params


def _fails_naming(tmp_path: Path, capsys, lines: list[str], *expected: str, **source_keys) -> str:
    params = _project(tmp_path, lines, **source_keys)
    assert main(["ingest", "--params", str(params)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    quarantine = pd.read_csv(tmp_path / "interim" / QUARANTINE_FILE)
    report = json.loads((tmp_path / "ingest.json").read_text())["primary"]
    assert report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]
    assert report["rows_quarantined"] == int((quarantine["table"] == "primary").sum())
    assert not (tmp_path / "interim" / RECORDS_FILE).exists()
    return err


def _many(n: int = 40, *, closed: str = "2024-03-0{d}") -> list[str]:
    """``n`` rows alternating won, lost and open; ``closed`` spells the decision date of day ``d``."""
    outcome = ["Won", "Lost", "Open"]
    return [f"{i},{outcome[i % 3]},{'' if i % 3 == 2 else closed.format(d=1 + i % 9)},2024-01-0{1 + i % 9},"
            f"Software,10,no,CEO" for i in range(n)]


def test_a_trailing_comma_on_every_row_names_the_malformed_lines(tmp_path: Path, capsys) -> None:
    """Class 3 rule: every line malformed -> the reason, its count and the delimiter hint; quarantine written."""
    err = _fails_naming(tmp_path, capsys, [HEADER, *(r + "," for r in _many())],
                        "every row was quarantined (40 read, none kept)",
                        "malformed line: expected N fields, found N (40 rows)", "ends with an extra delimiter")
    assert "quarantine.csv" in err


def test_month_first_dates_left_at_the_default_format_name_the_format(tmp_path: Path, capsys) -> None:
    """Class 3 rule: closed dates in m/d/Y under the default %Y-%m-%d -> no won rows, and why."""
    rows = _many(closed="03/0{d}/2024")
    _fails_naming(tmp_path, capsys, [HEADER, *rows], "no won rows after validation (open: 13)",
                  "unparseable date '…' (expected %Y-%m-%d) (27 rows)", "check the date formats declared")


def test_outcome_values_that_map_to_nothing_name_the_mapping(tmp_path: Path, capsys) -> None:
    """Class 3 rule: every stage value unmapped -> the mapping reason with its count, the outcome hint."""
    rows = [r.replace(",Won,", ",Closed Won,").replace(",Lost,", ",Closed Lost,").replace(",Open,", ",Working,")
            for r in _many()]
    _fails_naming(tmp_path, capsys, [HEADER, *rows], "every row was quarantined",
                  "maps to no outcome", "(40 rows)", "check the won/lost values mapped for stage")


def test_an_export_entirely_after_its_declared_date_says_so(tmp_path: Path, capsys) -> None:
    """Class 3 rule (with class 1): every row after source.clock.export_date -> that reason, not 'no won rows'."""
    _fails_naming(tmp_path, capsys, [HEADER, *_many()], "every row was quarantined",
                  "is after the export's date N (source.clock)", "source.clock.export_date",
                  clock={"export_date": "2023-06-30"})


def test_a_failed_run_removes_the_previous_runs_tables(tmp_path: Path, capsys) -> None:
    """Class 3 rule: after a failed ingest no earlier records.parquet is left for features to read."""
    params = _project(tmp_path, [HEADER, *_many()])
    assert main(["ingest", "--params", str(params)]) == 0
    assert (tmp_path / "interim" / RECORDS_FILE).exists()
    _fails_naming(tmp_path, capsys, [HEADER, *(r + "," for r in _many())], "every row was quarantined")
    assert main(["features", "--params", str(params)]) == 3
    assert "run `leadscore ingest` first" in capsys.readouterr().err


def test_a_scoring_read_with_every_row_quarantined_names_the_reasons(tmp_path: Path) -> None:
    """Class 3 rule for an export read to score (no outcome needed): still the reasons, not an empty run."""
    (tmp_path / "export.csv").write_text("\n".join([HEADER, *(r + "," for r in ROWS)]) + "\n")
    source = parse_settings({"source": flat_source(tmp_path)}).source
    with pytest.raises(IngestFailed, match=r"every row was quarantined \(3 read, none kept\).*malformed line"):
        ingest(source, for_training=False)


def test_the_reasons_name_at_most_three_and_the_largest_first(tmp_path: Path, capsys) -> None:
    """Class 3 rule: the message lists the top reasons by count (at most three), largest first."""
    rows = [*(r + "," for r in _many(30)), *(r.replace(",Won,", ",Maybe,") for r in _many(30)[:9] if ",Won," in r),
            "x,Won,2024-13-45,2024-01-01,a,1,no,x", ",Lost,2024-03-01,2024-01-01,a,1,no,x",
            "y,Lost,2024-03-01,2024-01-01,a,1,no,x,z"]
    err = _fails_naming(tmp_path, capsys, [HEADER, *rows], "malformed line: expected N fields, found N (31 rows)")
    listed = err.split("The top quarantine reasons:")[1].split(". To fix")[0]
    assert listed.count(" rows)") + listed.count(" row)") == 3
