import pandas as pd
import pytest

from pipeline.config import FeaturesParams
from pipeline.features import build_features
from pipeline.features.contact import department, seniority
from pipeline.features.intent import NO_ACTIVITY_DAYS, event_types, intent_features

TITLES = [
    ("CEO", "c_level"), ("Chief Executive Officer", "c_level"), ("Founder & CEO", "c_level"),
    ("Co-Founder", "c_level"), ("CTO", "c_level"), ("Chief Revenue Officer", "c_level"), ("President", "c_level"),
    ("VP of Sales", "vp"), ("VP Sales", "vp"), ("Vice President, Marketing", "vp"), ("SVP Operations", "vp"),
    ("EVP, IT", "vp"), ("Senior Vice President Sales", "vp"), ("vice-president finance", "vp"),
    ("Director of Sales", "director"), ("Dir. Marketing", "director"), ("Head of IT", "director"),
    ("Sr. Director Finance", "director"), ("Sales Manager", "manager"), ("Mgr, Operations", "manager"),
    ("Team Lead, Sales", "manager"), ("Account Executive", "ic"), ("Sr. Data Eng.", "ic"),
    ("Software Engineer", "ic"), ("Intern", "ic"), ("  SALES REP ", "ic"), ("", "unknown"), (None, "unknown"),
]


@pytest.mark.parametrize(("title", "level"), TITLES)
def test_seniority_from_free_text_titles(title: str | None, level: str) -> None:
    assert seniority(pd.Series([title], dtype="object"))[0] == level


@pytest.mark.parametrize(("title", "dept"), [
    ("VP of Sales", "sales"), ("CFO", "finance"), ("Head of IT", "it"), ("Sr. Data Eng.", "engineering"),
    ("Marketing Specialist", "marketing"), ("Mgr, Operations", "operations"), ("CEO", "executive"),
    ("Intern", "other"), ("", "unknown"),
])
def test_department_from_titles(title: str, dept: str) -> None:
    assert department(pd.Series([title]))[0] == dept


def _events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "event_key": pd.array([r[0] for r in rows], dtype="string"),
        "event_type": pd.array([r[1] for r in rows], dtype="string"),
        "timestamp": pd.to_datetime([r[2] for r in rows], format="ISO8601").astype("datetime64[us]"),
    })


KEYS = pd.Series(["l1", "l2"], dtype="string")
AS_OF = pd.Series(pd.to_datetime(["2024-06-30", "2024-06-30"]))
TYPES = ["pricing_page_view", "demo_request", "webinar_attended"]


def _intent(events: pd.DataFrame) -> pd.DataFrame:
    return intent_features(KEYS, AS_OF, events, types=TYPES, windows=[7, 30, 90])


def test_window_counts_and_recency_are_exact() -> None:
    events = _events([
        ("l1", "pricing_page_view", "2024-06-29 12:00"),  # 0.5 days before
        ("l1", "pricing_page_view", "2024-06-20 00:00"),  # 10 days
        ("l1", "demo_request", "2024-04-15 00:00"),       # 76 days
        ("l1", "demo_request", "2024-01-01 00:00"),       # older than every window
    ])
    out = _intent(events)
    assert out.loc[0, ["evt_pricing_page_view_7d", "evt_pricing_page_view_30d", "evt_pricing_page_view_90d"]].tolist() \
        == [1, 2, 2]
    assert out.loc[0, ["evt_demo_request_7d", "evt_demo_request_30d", "evt_demo_request_90d"]].tolist() == [0, 0, 1]
    assert out.loc[0, "days_since_last_event"] == 0
    assert out.loc[1, "days_since_last_event"] == NO_ACTIVITY_DAYS
    assert out.loc[1].drop("days_since_last_event").sum() == 0


def test_events_at_or_after_the_as_of_date_change_nothing() -> None:
    before = _events([("l1", "pricing_page_view", "2024-06-29 12:00"), ("l2", "webinar_attended", "2024-05-01")])
    planted = pd.concat([before, _events([
        ("l1", "demo_request", "2024-06-30 00:00"),  # exactly at the as-of instant
        ("l1", "pricing_page_view", "2024-07-02 09:00"),
        ("l2", "demo_request", "2025-01-01"),
    ])], ignore_index=True)
    pd.testing.assert_frame_equal(_intent(before), _intent(planted))


def test_event_types_are_the_most_frequent_in_name_order() -> None:
    events = _events([("l1", "b", "2024-01-01"), ("l1", "a", "2024-01-01"), ("l1", "c", "2024-01-01"),
                      ("l1", "c", "2024-01-01")])
    assert event_types(events, limit=2) == ["a", "c"]


def test_planted_future_events_change_nothing_on_a_real_export(small) -> None:
    ingested = small.ingested
    matrix = small.features.matrix
    records = ingested.records
    as_of = matrix["as_of"]
    future = pd.DataFrame({
        "event_key": records["event_key"].astype("string"),
        "event_type": pd.array(["demo_request"] * len(records), dtype="string"),
        "timestamp": (as_of + pd.Timedelta(hours=3)).astype("datetime64[us]"),
    }).dropna(subset=["event_key"])
    assert ingested.events is not None
    events = pd.concat([ingested.events, future], ignore_index=True)
    scoring = matrix.loc[matrix["outcome"] == "open", "as_of"].iloc[0].date()
    again = build_features(records, events, ingested.fields, params=small.settings.features, scoring_date=scoring)
    pd.testing.assert_frame_equal(matrix, again.matrix)


def test_open_records_are_taken_at_the_scoring_date(small) -> None:
    matrix = small.features.matrix
    open_rows = matrix[matrix["outcome"] == "open"]
    assert open_rows["label"].isna().all()
    assert open_rows["as_of"].nunique() == 1
    assert open_rows["as_of"].iloc[0] == pd.Timestamp(small.settings.generate.export_date)
    closed = matrix[matrix["outcome"] != "open"]
    assert set(closed["label"]) == {0.0, 1.0}
    assert (closed["as_of"] < open_rows["as_of"].iloc[0]).all()


def test_leaky_and_personal_columns_are_not_features(small) -> None:
    names = set(small.features.names)
    sources = {s.source for s in small.features.specs}
    assert not (names | sources) & {"csm_assigned", "closed_date", "first_name", "last_name", "email",
                                    "company_name"}


def test_canonical_fields_give_derived_features(small) -> None:
    names = small.features.names
    for derived in ("company_age_years", "is_subsidiary", "seniority", "department", "budget_to_deal_size"):
        assert derived in names
    assert "founded_year" not in names and "job_title" not in names


def test_windows_come_from_params(small) -> None:
    i = small.ingested
    out = build_features(i.records, i.events, i.fields, params=FeaturesParams(event_windows_days=[14]))
    assert "evt_demo_request_14d" in out.names
    assert "evt_demo_request_7d" not in out.names
