import numpy as np
import pandas as pd
import pytest

from pipeline.config import FeaturesParams
from pipeline.features.build import build_features
from pipeline.features.intent import NO_ACTIVITY_DAYS, event_types, intent_features


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
    assert out.loc[0, ["evt_pricing_page_view_trend", "evt_demo_request_trend"]].tolist() == [2, 0]
    assert out.loc[0, ["evt_pricing_page_view_days_since", "evt_demo_request_days_since",
                       "evt_webinar_attended_days_since"]].tolist() == [0, 76, NO_ACTIVITY_DAYS]
    ages = np.array([0.5, 10, 76, 181])
    assert out.loc[0, "engagement_score"] == pytest.approx((0.5 ** (ages / 30)).sum(), rel=1e-9)
    assert out.loc[1, "days_since_last_event"] == NO_ACTIVITY_DAYS
    counts = [c for c in out.columns if c.endswith("d") and c.startswith("evt_")]
    assert out.loc[1, counts].sum() == 0 and out.loc[1, "engagement_score"] == 0


def test_trend_compares_the_last_30_days_with_the_30_before() -> None:
    events = _events([("l1", "demo_request", "2024-06-25"), ("l1", "demo_request", "2024-05-20"),
                      ("l1", "demo_request", "2024-05-15"), ("l1", "demo_request", "2024-04-01")])
    out = _intent(events)
    assert out.loc[0, "evt_demo_request_trend"] == 1 - 2


def test_event_weights_and_half_life_shape_the_engagement_score() -> None:
    events = _events([("l1", "demo_request", "2024-06-20"), ("l1", "pricing_page_view", "2024-06-20")])
    out = intent_features(KEYS, AS_OF, events, types=TYPES, windows=[7], half_life_days=10,
                          weights={"demo_request": 3.0})
    assert out.loc[0, "engagement_score"] == pytest.approx(4 * 0.5, rel=1e-9)


def test_account_roll_up_counts_every_contact_of_the_account_point_in_time() -> None:
    keys = pd.Series(["l1", "l2", "l3"], dtype="string")
    as_of = pd.Series(pd.to_datetime(["2024-06-30", "2024-06-10", "2024-06-30"]))
    accounts = pd.Series(["acme", "acme", "globex"], dtype="string")
    events = _events([("l1", "demo_request", "2024-06-20"), ("l2", "pricing_page_view", "2024-06-05"),
                      ("l2", "pricing_page_view", "2024-06-25"), ("l3", "demo_request", "2024-01-01")])
    key_accounts = pd.DataFrame({"event_key": ["l1", "l2", "l3"], "account_key": ["acme", "acme", "globex"]})
    out = intent_features(keys, as_of, events, types=TYPES, windows=[30], accounts=accounts,
                          key_accounts=key_accounts)
    # l1 (as of 06-30) sees all three acme events; l2 (as of 06-10) only the one before its date.
    assert out["acct_events_30d"].tolist() == [3, 1, 0]
    assert out["evt_pricing_page_view_30d"].tolist() == [0, 1, 0]


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
    assert ingested.events is not None
    scoring = matrix.loc[matrix["outcome"] == "open", "as_of"].iloc[0]

    def rebuilt(planted_at: pd.Series) -> pd.DataFrame:
        future = pd.DataFrame({
            "event_key": records["event_key"].astype("string"),
            "event_type": pd.array(["demo_request"] * len(records), dtype="string"),
            "timestamp": planted_at.astype("datetime64[us]"),
        }).dropna(subset=["event_key"])
        events = pd.concat([ingested.events, future], ignore_index=True)
        return build_features(records, events, ingested.fields, params=small.settings.features,
                              scoring_date=scoring.date(), event_accounts=ingested.event_accounts,
                              icp=small.settings.icp, framework=small.settings.qualification.framework).matrix

    # A demo request 3 hours after each lead's own as-of date: no lead-level feature moves. (Account
    # roll-ups legitimately see it from colleagues whose as-of date is later.)
    own = rebuilt(matrix["as_of"] + pd.Timedelta(hours=3))
    lead_level = [c for c in matrix.columns if not c.startswith("acct_")]
    pd.testing.assert_frame_equal(matrix[lead_level], own[lead_level])
    # After everyone's as-of date (the scoring date): nothing at all moves.
    pd.testing.assert_frame_equal(matrix, rebuilt(pd.Series(scoring + pd.Timedelta(hours=3), index=records.index)))


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
    out = build_features(i.records, i.events, i.fields, params=FeaturesParams(event_windows_days=[14]),
                         icp=small.settings.icp, framework=small.settings.qualification.framework)
    assert "evt_demo_request_14d" in out.names
    assert "evt_demo_request_7d" not in out.names


def test_a_record_built_alone_gets_exactly_its_batch_features(small) -> None:
    i = small.ingested
    batch = small.features.matrix
    scoring = batch.loc[batch["outcome"] == "open", "as_of"].iloc[0].date()
    rows = [0, 17, int(np.flatnonzero(batch["outcome"] == "open")[0])]
    for row in rows:
        alone = build_features(i.records.iloc[[row]], i.events, i.fields, params=small.settings.features,
                               scoring_date=scoring, event_accounts=i.event_accounts,
                               icp=small.settings.icp, framework=small.settings.qualification.framework).matrix
        pd.testing.assert_frame_equal(alone.reset_index(drop=True), batch.iloc[[row]].reset_index(drop=True),
                                      check_dtype=False, check_exact=True)


def test_switching_framework_is_a_params_change(small) -> None:
    i = small.ingested
    champ = build_features(i.records, i.events, i.fields, params=small.settings.features, icp=small.settings.icp,
                           framework="champ")
    names = champ.names
    assert {"fw_challenges", "fw_authority", "fw_money", "fw_prioritization", "framework_points"} <= set(names)
    assert "fw_budget" not in names
    assert champ.report["framework"] == "CHAMP"
    assert set(champ.matrix["fw_prioritization"]) <= {"met", "not_met", "unknown"}
    is_open = champ.matrix["outcome"] == "open"
    assert champ.matrix.loc[is_open, "fw_money_reason"].str.startswith("Money ").all()
    assert champ.matrix.loc[~is_open, "fw_money_reason"].isna().all()  # reasons are for the leads reps see


def test_stage_reports_framework_shares_and_the_leakage_guard(small) -> None:
    report = small.features.report
    assert report["framework"] == "BANT"
    for shares in report["criteria"].values():
        assert sum(shares.values()) == pytest.approx(1.0)
    assert report["criteria"]["budget"]["unknown"] > 0.2  # a third of leads state no budget
    assert "csm_assigned" in report["leakage"]["dropped"]
    assert "csm_assigned" not in small.features.names


def test_records_sharing_a_key_each_see_their_own_window() -> None:
    # Two deals of one contact, decided at different dates: each counts the contact's events before its own date.
    keys = pd.Series(["c1", "c1", "c2"], dtype="string")
    as_of = pd.Series(pd.to_datetime(["2024-06-30", "2024-06-10", "2024-06-30"]))
    events = _events([("c1", "demo_request", "2024-06-05"), ("c1", "demo_request", "2024-06-20"),
                      ("nobody", "demo_request", "2024-06-20")])  # a key no record has: ignored
    out = intent_features(keys, as_of, events, types=TYPES, windows=[30])
    assert out["evt_demo_request_30d"].tolist() == [2, 1, 0]
    assert out["evt_demo_request_days_since"].tolist() == [10, 5, NO_ACTIVITY_DAYS]


def _brute_force_accounts(keys, as_of, accounts, events, *, windows, half_life_days, weights):
    """Account figures the slow way: every (record, event of its account) pair, one by one."""
    key_account = dict(zip(keys, accounts, strict=True))
    names = [f"acct_events_{w}d" for w in windows] + ["acct_engagement_score"]
    out: dict[str, list[float]] = {name: [] for name in names}
    for account, when in zip(accounts, as_of, strict=True):
        ages = [((when - t).total_seconds() // 1, weights.get(kind, 1.0))
                for k, kind, t in events.itertuples(index=False) if key_account.get(k) == account]
        ages = [(age, weight) for age, weight in ages if age > 0]
        for w in windows:
            out[f"acct_events_{w}d"].append(sum(age <= w * 86_400 for age, _ in ages))
        out["acct_engagement_score"].append(sum(weight * 0.5 ** (age / (half_life_days * 86_400))
                                                for age, weight in ages))
    return pd.DataFrame(out, dtype=float)


@pytest.mark.parametrize("half_life_days", [30.0, 0.01])  # 0.01: the running sum is rescaled many times
def test_account_roll_up_matches_a_brute_force_count(half_life_days) -> None:
    rng = np.random.default_rng(7)
    n_keys, n_events = 60, 3000
    keys = [f"k{i}" for i in range(n_keys)]
    accounts = [f"a{i % 9}" for i in range(n_keys)]
    start = pd.Timestamp("2023-01-01")
    as_of = pd.Series(start + pd.to_timedelta(rng.integers(0, 400, n_keys), unit="D"))
    events = _events([(f"k{rng.integers(0, n_keys + 3)}",  # a few keys no record or account has
                       TYPES[rng.integers(0, 3)] if rng.random() < 0.9 else "other_type",
                       str(start + pd.Timedelta(seconds=int(rng.integers(0, 420 * 86_400)))))
                      for _ in range(n_events)])
    weights = {"demo_request": 2.5}
    key_accounts = pd.DataFrame({"event_key": keys, "account_key": accounts})
    out = intent_features(pd.Series(keys, dtype="string"), as_of, events, types=TYPES, windows=[7, 30, 90],
                          half_life_days=half_life_days, weights=weights,
                          accounts=pd.Series(accounts, dtype="string"), key_accounts=key_accounts)
    expected = _brute_force_accounts(keys, as_of, accounts, events, windows=[7, 30, 90],
                                     half_life_days=half_life_days, weights=weights)
    counts = [f"acct_events_{w}d" for w in (7, 30, 90)]
    pd.testing.assert_frame_equal(out[counts], expected[counts])
    np.testing.assert_allclose(out["acct_engagement_score"], expected["acct_engagement_score"], rtol=1e-9,
                               atol=1e-300)


def test_an_event_log_read_from_parquet_equals_the_frame(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.features.events import EventLog

    frame = _events([("l1", "demo_request", "2024-06-01"), ("l2", "pricing_page_view", "2024-06-02"),
                     ("l3", "demo_request", "2024-06-03"), ("l1", "webinar_attended", "2024-06-04")])
    # Two row groups with dictionaries of their own (ingest's share one): the codes are mapped onto one log.
    path = tmp_path / "events.parquet"
    tables = [pa.Table.from_pandas(rows.astype({"event_key": "category", "event_type": "category"}),
                                   preserve_index=False) for rows in (frame.iloc[:2], frame.iloc[2:])]
    with pq.ParquetWriter(path, tables[0].schema) as writer:
        for table in tables:
            writer.write_table(table.cast(tables[0].schema))
    read = EventLog.read(path)
    assert len(read.parts) == 2 and len(read) == 4
    as_of = pd.Series(pd.to_datetime(["2024-07-01"] * 3))
    keys = pd.Series(["l1", "l2", "l3"], dtype="string")
    pd.testing.assert_frame_equal(intent_features(keys, as_of, read, types=TYPES, windows=[30]),
                                  intent_features(keys, as_of, frame, types=TYPES, windows=[30]))
    assert event_types(read, limit=2) == event_types(frame, limit=2) == ["demo_request", "pricing_page_view"]
    assert read.latest() == pd.Timestamp("2024-06-04")


def test_batch_runs_keep_freed_memory_where_glibc_allows() -> None:
    import sys

    from pipeline.runtime import keep_freed_memory

    assert keep_freed_memory() is (sys.platform.startswith("linux") and _is_glibc())


def _is_glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"


def test_features_from_the_interim_files_equal_those_from_the_ingest_result(small, tmp_path) -> None:
    # The stage reads what ingest wrote: keys as shared dictionaries, the log on a thread of its own
    # (its latest event taken from the Parquet statistics). It must build exactly the in-memory features.
    from pipeline.data.ingest import write_result
    from pipeline.features.events import EventLog, PendingEventLog
    from pipeline.features.interim import read_interim
    from pipeline.stages.features import featurise

    write_result(small.ingested, interim_dir=tmp_path / "interim", report_path=tmp_path / "ingest.json")
    interim = read_interim(tmp_path / "interim")
    assert isinstance(interim.events, PendingEventLog)
    assert interim.event_accounts is not None
    assert interim.records["event_key"].cat.categories.equals(interim.event_accounts["event_key"].cat.categories)
    whole = EventLog.read(tmp_path / "interim" / "events.parquet")
    assert interim.events.latest() == whole.latest() == small.ingested.events["timestamp"].max()
    assert len(interim.events) == len(whole) == len(small.ingested.events)
    from_files = featurise(interim.records, interim.events, interim.fields, settings=small.settings,
                           event_accounts=interim.event_accounts)
    pd.testing.assert_frame_equal(from_files.matrix, small.features.matrix, check_exact=True)
    assert from_files.specs == small.features.specs


def test_a_log_that_cannot_be_read_fails_with_the_file_named(tmp_path) -> None:
    from pipeline.errors import DataError
    from pipeline.features.events import PendingEventLog

    path = tmp_path / "events.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"events\.parquet: not a readable Parquet file"):
        PendingEventLog(path)


def test_the_leakage_guard_measured_group_by_group_matches_one_pass_over_the_matrix(small) -> None:
    # featurise measures each group of features as it is built (the intent features on other threads
    # meanwhile); the figures must be those of the guard run once over the finished matrix.
    from pipeline.features.build import build_features
    from pipeline.modeling.leakage import audit_leakage

    s = small.settings
    built = build_features(small.ingested.records, small.ingested.events, small.ingested.fields, params=s.features,
                           scoring_date=s.features.scoring_date, event_accounts=small.ingested.event_accounts,
                           icp=s.icp, framework=s.qualification.framework)
    kept, report = audit_leakage(built.matrix, built.specs, max_auc=s.features.leakage_max_auc,
                                 valid_fraction=s.split.valid_fraction, test_fraction=s.split.test_fraction,
                                 seed=s.seed)
    assert report == small.features.report["leakage"]
    assert kept == small.features.specs


def test_the_matrix_is_its_own_writable_data(small) -> None:
    # Columns are passed between frames without copies where pandas allows it; the matrix handed out
    # must still be writable, and writing to it must leave the records untouched.
    from pipeline.stages.features import featurise

    records = small.ingested.records
    before = records.copy()
    matrix = featurise(records, small.ingested.events, small.ingested.fields, settings=small.settings,
                       event_accounts=small.ingested.event_accounts).matrix
    for column in ["employees", "evt_demo_request_30d", "acct_events_30d", "fw_budget", "seniority", "icp_fit"]:
        matrix.loc[0, column] = matrix.loc[1, column]
    pd.testing.assert_frame_equal(records, before)


def test_a_damaged_interim_file_fails_with_the_file_named(small, tmp_path) -> None:
    from pipeline.data.ingest import write_result
    from pipeline.errors import DataError
    from pipeline.features.events import EventLog
    from pipeline.features.interim import read_interim

    interim = tmp_path / "interim"
    write_result(small.ingested, interim_dir=interim, report_path=tmp_path / "ingest.json")
    events = interim / "events.parquet"
    data = bytearray(events.read_bytes())
    data[100:len(data) // 2] = bytes(len(data) // 2 - 100)  # the pages zeroed, the footer intact
    events.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"events\.parquet: row group 0 cannot be read"):
        EventLog.read(events)
    (interim / "records.parquet").write_bytes(b"PAR1 nothing else")
    with pytest.raises(DataError, match=r"records\.parquet: cannot be read"):
        read_interim(interim)
