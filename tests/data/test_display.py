"""Display-only columns (source.display): the CRM's own spelling reaches the scores, the board and the
history, and never the features, the model or its metadata."""

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import parse_settings
from pipeline.data.generate import ACCOUNT_OWNERS
from pipeline.errors import ConfigError, DataError
from pipeline.modeling.train import TrainResult
from pipeline.scoring.display import with_display
from tests.conftest import Prepared


def test_display_columns_keep_the_crm_spelling(small: Prepared) -> None:
    display = small.ingested.display
    assert display is not None
    assert list(display.columns) == ["record_id", "company", "contact_name", "contact_title", "owner", "contact_email",
                                     "crm_link"]
    assert display["record_id"].tolist() == small.ingested.records["record_id"].tolist()
    raw = small.export.accounts.drop_duplicates("account_id").set_index("account_id")
    leads = small.export.leads.drop_duplicates("lead_id").set_index("lead_id")
    deals = small.export.deals.drop_duplicates("deal_id", keep="last").set_index("deal_id")
    row = display.iloc[10]
    lead = leads.loc[deals.loc[row["record_id"], "lead_id"]]
    assert row["contact_name"] == f"{lead['first_name']} {lead['last_name']}"
    assert row["company"] == raw.loc[lead["account_id"], "company_name"]  # original casing, never folded
    assert set(display["owner"].dropna()) <= set(ACCOUNT_OWNERS)
    assert row["crm_link"] == f"https://crm.example.com/deals/{row['record_id']}"


def test_display_values_never_reach_features_model_or_metadata(small: Prepared, small_model: TrainResult,
                                                               models_dir: Path) -> None:
    display = small.ingested.display
    assert display is not None
    # The title is a mapped field too (job_title: seniority and department are features); the rest is display only.
    names = ["company", "contact_name", "owner", "contact_email"]
    assert not set(names) & set(small.features.matrix.columns)
    texts = {p.name: p.read_text(encoding="utf-8") for p in models_dir.iterdir() if p.suffix in (".txt", ".json")}
    assert {"model.txt", "model_meta.json"} <= set(texts)
    matrix_text = small.features.matrix.astype(str)
    for column in names:
        values = display[column].dropna().drop_duplicates()
        sample = values.sample(min(40, len(values)), random_state=1)
        for value in sample:
            assert not any(value in text for text in texts.values()), (column, value)
        assert not matrix_text.isin(set(display[column].dropna())).any().any(), column
    for owner in ACCOUNT_OWNERS:
        assert not any(owner in text for text in texts.values())


def test_with_display_adds_columns_after_the_id_and_keeps_every_row() -> None:
    scores = pd.DataFrame({"record_id": ["b", "a", "c"], "score": [90, 50, 10]})
    display = pd.DataFrame({"record_id": ["a", "b"], "company": ["Acme", "Bolt"], "owner": ["Ana", None]})
    out = with_display(scores, display)
    assert list(out.columns) == ["record_id", "company", "owner", "score"]
    assert out["company"].tolist()[:2] == ["Bolt", "Acme"] and pd.isna(out["company"].iloc[2])
    assert out["score"].tolist() == [90, 50, 10]
    assert with_display(scores, None) is scores


@pytest.mark.parametrize(("display", "key"), [
    ({"fields": {"company": {"table": "nowhere", "column": "x"}}}, "display.fields.company.table"),
    ({"fields": {"nickname": {"column": "x"}}}, "nickname"),
    ({"link": "https://crm.example.com/deals/{id}"}, "link"),
    ({"link": "javascript:alert(1)//{record_id}"}, "link"),
])
def test_bad_display_config_names_the_key(display: dict, key: str) -> None:
    source = {"kind": "flat", "primary": {"file": "x.csv", "id": "Id", "outcome": {"column": "Won", "won": ["1"],
                                                                                    "lost": ["0"]}},
              "display": display}
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        parse_settings({"source": source})


def test_a_display_column_missing_from_the_file_is_named(small: Prepared, tmp_path: Path) -> None:
    from pipeline.data.ingest import ingest

    source = small.settings.source.model_copy(update={"display": parse_settings(
        {"source": {"kind": "synthetic", "display": {"fields": {"owner": {"table": "accounts",
                                                                           "column": "Account Owner"}}}}}
    ).source.display})
    with pytest.raises(DataError, match="Account Owner"):
        ingest(source)


def test_display_rows_follow_the_records_when_the_clock_sets_rows_aside(tmp_path: Path) -> None:
    """The display columns are built while the activity log is read, before the export's clock is
    known; rows the clock then quarantines leave the display too, and every other row keeps its own."""
    from pipeline.config import SourceParams
    from pipeline.data.ingest import ingest

    rows = [f"D{i},{'won' if i % 2 else 'lost'},2024-03-{1 + i % 20:02d},2024-01-01,Rep {i},First{i},Last {i}"
            for i in range(30)]
    rows[7] = "D7,won,2099-01-01,2024-01-01,Rep 7,First7,Last 7"       # closed after the export's date
    rows[12] = "D12,open,,2098-05-01,Rep 12,First12,Last 12"           # created after it
    (tmp_path / "deals.csv").write_text("deal,status,decided,created,rep,first,last\n" + "\n".join(rows) + "\n")
    (tmp_path / "activity.csv").write_text("who,what,when\n" + "\n".join(
        f"D{i},Blog View,2024-02-01 10:00:00" for i in range(30)) + "\n")
    source = SourceParams.model_validate({
        "kind": "relational", "dir": str(tmp_path),
        "primary": {"file": "deals.csv", "id": "deal",
                    "outcome": {"column": "status", "won": ["won"], "lost": ["lost"], "open": ["open"]},
                    "decision_date": {"column": "decided"}, "created_date": {"column": "created"}},
        "events": {"file": "activity.csv", "key": "who", "type": "what",
                   "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M:%S"}},
        "clock": {"export_date": "2024-06-30"},
        "display": {"fields": {"owner": {"column": "rep"}, "contact": {"column": ["first", "last"]}},
                    "link": "https://crm.example/d/{record_id}"},
    })
    result = ingest(source)
    display = result.display
    assert display is not None
    assert display["record_id"].tolist() == result.records["record_id"].tolist()
    assert {"D7", "D12"}.isdisjoint(display["record_id"]) and len(display) == 28
    for _, row in display.iterrows():
        i = row["record_id"][1:]
        assert (row["owner"], row["contact_name"]) == (f"Rep {i}", f"First{i} Last {i}")
        assert row["crm_link"] == f"https://crm.example/d/D{i}"
