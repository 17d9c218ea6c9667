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
    assert export.events.to_table().equals(again.events.to_table())
    other = generate(params=SMALL, seed=8)
    assert not export.truth["p_true"].equals(other.truth["p_true"])


def test_the_export_is_the_same_whatever_the_chunk_size(export, tmp_path, monkeypatch) -> None:
    """The events are drawn, counted and written in chunks: a chunk of a few hundred events (the
    default is 4M) gives the same files, byte for byte, flat report and ground truth included."""
    import pipeline.data.generate as generate_module
    from pipeline.data.generate import write_export

    write_export(export, raw_dir=tmp_path / "whole", truth_dir=tmp_path / "whole-truth")
    monkeypatch.setattr(generate_module, "EVENT_CHUNK", 777)
    monkeypatch.setattr(generate_module, "EVENT_ROWS", 555)
    chunked = generate(params=SMALL, seed=7)
    assert chunked.events.num_rows == export.events.num_rows > 777 * 10
    write_export(chunked, raw_dir=tmp_path / "chunked", truth_dir=tmp_path / "chunked-truth")
    for name in ("accounts.csv", "leads.csv", "deals.csv", "events.csv", "contacts_flat.csv"):
        assert (tmp_path / "chunked" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert ((tmp_path / "chunked-truth" / "truth.parquet").read_bytes()
            == (tmp_path / "whole-truth" / "truth.parquet").read_bytes())


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
    events = export.events.to_table().to_pandas()
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


def test_a_later_export_date_is_the_same_world_later() -> None:
    from datetime import date

    world = {"n_leads": 2000, "n_accounts": 500, "world_end_date": date(2026, 6, 30)}
    first = generate(params=GenerateParams(**world, export_date=date(2025, 12, 31)), seed=7)
    later = generate(params=GenerateParams(**world, export_date=date(2026, 3, 31)), seed=7)
    pd.testing.assert_frame_equal(first.accounts, later.accounts)
    kept = later.leads[later.leads["lead_id"].isin(first.leads["lead_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(first.leads, kept)  # every lead as it was, new ones after
    assert len(later.leads) > len(first.leads)
    before, after = (d.deals.drop_duplicates("deal_id").set_index("deal_id") for d in (first, later))
    closed = before[before["closed_date"] != ""]
    pd.testing.assert_frame_equal(after.loc[closed.index], closed)  # a closed deal stays closed, the same way
    was_open = before.index[before["closed_date"] == ""]
    assert (after.loc[was_open, "closed_date"] != "").mean() > 0.5  # most open deals have closed since
    events = later.events.to_table().to_pandas()
    first_events = first.events.to_table().to_pandas()
    pd.testing.assert_frame_equal(events[events["event_id"].isin(first_events["event_id"])]
                                  .reset_index(drop=True), first_events)
    # Each export is one date's view of the world: nothing after it.
    assert pd.to_datetime(first.deals["created_date"], errors="coerce").max() < pd.Timestamp("2025-12-31")
    assert first.truth["is_open"].sum() > later.truth.set_index("deal_id").loc[
        first.truth.loc[first.truth["is_open"], "deal_id"], "is_open"].sum()
    with pytest.raises(ValueError, match="world_end_date must not be before export_date"):
        GenerateParams(export_date=date(2025, 12, 31), world_end_date=date(2025, 6, 30))


def test_the_generator_never_overwrites_a_file_edited_since_it_wrote_it(tmp_path, export) -> None:
    from pipeline.data.generate import MANIFEST_FILE, write_export
    from pipeline.errors import DataError

    raw, truth = tmp_path / "raw", tmp_path / "truth"
    write_export(export, raw_dir=raw, truth_dir=truth)
    assert (raw / MANIFEST_FILE).exists()
    write_export(export, raw_dir=raw, truth_dir=truth)  # untouched: written again
    deals = raw / "deals.csv"
    deals.write_text(deals.read_text() + "D9,L1,2025-01-01,2025-02-01,Closed Won,1000,\n")
    edited = deals.read_bytes()
    with pytest.raises(DataError, match=r"deals.csv changed after `leadscore generate` wrote it.*source.dir"):
        write_export(export, raw_dir=raw, truth_dir=truth)
    assert deals.read_bytes() == edited
    (raw / MANIFEST_FILE).unlink()  # files of unknown origin are not overwritten either
    with pytest.raises(DataError, match="were not written by `leadscore generate`"):
        write_export(export, raw_dir=raw, truth_dir=truth)
