"""Intent features, point in time: window counts, recency, trend, decayed engagement and account roll-ups, exact."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import FeaturesParams
from pipeline.contracts.features import NO_ACTIVITY_DAYS
from pipeline.features.intent import event_types, intent_features


def _events(rows: list[tuple[str, str | None, str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "event_key": pd.array([r[0] for r in rows], dtype="string"),
        "event_type": pd.array([r[1] for r in rows], dtype="string"),
        "timestamp": pd.to_datetime([r[2] for r in rows], format="ISO8601").astype("datetime64[us]"),
    })


KEYS = pd.Series(["l1", "l2"], dtype="string")


AS_OF = pd.Series(pd.to_datetime(["2024-06-30", "2024-06-30"]))


TYPES = ["pricing_page_view", "demo_request", "webinar_attended"]
HALF_LIFE = FeaturesParams().half_life_days


def _intent(events: pd.DataFrame) -> pd.DataFrame:
    return intent_features(KEYS, AS_OF, events, types=TYPES, windows=[7, 30, 90], half_life_days=HALF_LIFE)


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
    out = intent_features(keys, as_of, events, types=TYPES, windows=[30], half_life_days=HALF_LIFE,
                          accounts=accounts, key_accounts=key_accounts)
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


def test_records_sharing_a_key_each_see_their_own_window() -> None:
    # Two deals of one contact, decided at different dates: each counts the contact's events before its own date.
    keys = pd.Series(["c1", "c1", "c2"], dtype="string")
    as_of = pd.Series(pd.to_datetime(["2024-06-30", "2024-06-10", "2024-06-30"]))
    events = _events([("c1", "demo_request", "2024-06-05"), ("c1", "demo_request", "2024-06-20"),
                      ("nobody", "demo_request", "2024-06-20")])  # a key no record has: ignored
    out = intent_features(keys, as_of, events, types=TYPES, windows=[30], half_life_days=HALF_LIFE)
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


def test_events_without_a_type_count_as_other_activity_alone_or_in_a_batch() -> None:
    """A missing type is "any other type": weight 1, no per-type column, whatever else the log holds.
    (Its code was once the log's number of types rather than the other-type code: with more types in
    the log than asked for, it read past the weights and packed into the time bits, so a lead's
    score changed with other leads' events.)"""
    own = [("l1", None, "2024-06-20"), ("l1", "demo_request", "2024-06-10"), ("l1", None, "2024-05-01")]
    others = [("l2", t, f"2024-0{m}-1{d}") for m in (3, 4, 5) for d in range(5)
              for t in ("blog_view", "email_open", "email_click", "content_download", None)]
    alone = intent_features(KEYS[:1], AS_OF[:1], _events(own), types=TYPES, windows=[30], half_life_days=10,
                            weights={"demo_request": 3.0})
    batch = intent_features(KEYS, AS_OF, _events(own + others), types=TYPES, windows=[30], half_life_days=10,
                            weights={"demo_request": 3.0})
    pd.testing.assert_frame_equal(batch.iloc[:1], alone, check_exact=True)
    ages = np.array([10.0, 60.0])
    assert alone.loc[0, "engagement_score"] == pytest.approx(3.0 * 0.5 ** 2 + (0.5 ** (ages / 10)).sum(), rel=1e-12)
    assert alone.loc[0, "days_since_last_event"] == 10 and alone.loc[0, "evt_demo_request_30d"] == 1


def test_types_the_log_lacks_leave_the_rest_exact() -> None:
    """A model's recipe pins its event types; a night's log may hold none of some. The other-type
    code is then larger than the log's own number of types and must still fit the sort key."""
    events = _events([("l1", "pricing_page_view", "2024-06-29 12:00"), ("l1", "blog_view", "2024-06-25"),
                      ("l1", None, "2024-06-01")])
    out = intent_features(KEYS[:1], AS_OF[:1], events, types=[*TYPES, "a_type", "b_type", "c_type", "d_type"],
                          windows=[7, 30], half_life_days=HALF_LIFE)
    assert out.loc[0, ["evt_pricing_page_view_7d", "evt_pricing_page_view_30d"]].tolist() == [1, 1]
    assert out.loc[0, "days_since_last_event"] == 0 and out.loc[0, "evt_a_type_days_since"] == NO_ACTIVITY_DAYS
    ages = np.array([0.5, 5, 29])
    assert out.loc[0, "engagement_score"] == pytest.approx((0.5 ** (ages / HALF_LIFE)).sum(), rel=1e-12)
