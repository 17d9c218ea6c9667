import numpy as np
import pandas as pd
import pytest

from pipeline.config import GenerateParams
from pipeline.data.generate import EXPORT_COLUMNS as COLUMNS
from pipeline.data.generate import generate

SMALL = GenerateParams(n_leads=1500, n_accounts=400)


@pytest.fixture(scope="module")
def export():
    return generate(params=SMALL, seed=7)


def test_same_seed_same_export_and_other_seed_differs(export) -> None:
    again = generate(params=SMALL, seed=7)
    pd.testing.assert_frame_equal(export.leads, again.leads)
    pd.testing.assert_frame_equal(export.deals, again.deals)
    assert export.events.equals(again.events)
    other = generate(params=SMALL, seed=8)
    assert not export.truth["p_true"].equals(other.truth["p_true"])


def test_tables_have_the_schema_columns(export) -> None:
    assert tuple(export.accounts.columns) == COLUMNS["accounts"]
    assert tuple(export.leads.columns) == COLUMNS["leads"]
    assert tuple(export.deals.columns) == COLUMNS["deals"]
    assert tuple(export.events.column_names) == COLUMNS["events"]


def test_size_comes_from_params(export) -> None:
    assert len(export.truth) == 1500
    # Dirty duplicates are extra rows on top of the requested size.
    assert 1500 <= len(export.leads) <= 1500 * 1.02
    assert export.events.num_rows > 1500 * SMALL.events_per_lead * 0.5


def test_truth_is_a_probability_per_lead_with_a_realistic_base_rate(export) -> None:
    truth = export.truth
    assert truth["lead_id"].is_unique
    assert truth["p_true"].between(0, 1, inclusive="neither").all()
    closed = truth[~truth["is_open"]]
    assert 0.15 < closed["won"].mean() < 0.40
    # Outcomes are Bernoulli draws from p_true: calibrated in aggregate.
    assert abs(closed["won"].mean() - closed["p_true"].mean()) < 0.03
    assert 0.02 < truth["is_open"].mean() < 0.2


def test_signal_scale_zero_gives_no_signal() -> None:
    flat = generate(params=GenerateParams(n_leads=500, n_accounts=100, signal_scale=0.0), seed=1)
    assert flat.truth["p_true"].nunique() == 1


def test_the_leaky_column_tracks_the_outcome(export) -> None:
    deals = export.deals.drop_duplicates("deal_id").merge(export.truth[["deal_id", "won", "is_open"]], on="deal_id")
    closed = deals[~deals["is_open"]]
    agreement = ((closed["csm_assigned"] == "yes") == closed["won"]).mean()
    assert agreement > 0.95
    assert (deals.loc[deals["is_open"], "csm_assigned"] == "").all()


def test_export_is_messy_like_a_real_one(export) -> None:
    industries = set(export.accounts["industry"])
    assert {"Software", "SaaS", "Sofware"} <= industries or len(industries) > 15
    assert export.accounts["employees"].str.contains(",").any()
    assert export.accounts["annual_revenue"].str.startswith("$").any()
    assert export.leads["lead_id"].duplicated().any()
    assert export.deals["stage"].isin(["??", "", "Pending Review"]).any()
    assert export.leads["job_title"].str.contains(r"\.").any()  # abbreviations such as "Sr."


def test_events_never_postdate_the_export_and_some_follow_the_decision(export) -> None:
    events = export.events.to_pandas()
    ts = pd.to_datetime(events["timestamp"], errors="coerce")
    assert ts.max() < pd.Timestamp(SMALL.export_date)
    as_of = export.truth.set_index("lead_id")["as_of"]
    after = ts > events["lead_id"].map(as_of)
    assert after.sum() > 0  # activity after close exists, so point-in-time features are tested for real


def test_events_per_lead_sets_the_event_volume() -> None:
    big = generate(params=GenerateParams(n_leads=5000, n_accounts=1000, events_per_lead=20.0), seed=3)
    per_lead = big.events.num_rows / 5000
    assert 14 < per_lead < 30
    assert np.isfinite(big.truth["p_true"]).all()
