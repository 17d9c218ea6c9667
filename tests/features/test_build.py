"""The feature matrix: point in time, a record alone gets its batch features, params shape it."""

import numpy as np
import pandas as pd

from pipeline.config import FeaturesParams
from pipeline.features.build import build_features


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
    assert champ.matrix.loc[is_open, "fw_money_reason"].str.match(r"Stated budget|The export has no").all()
    assert champ.matrix.loc[~is_open, "fw_money_reason"].isna().all()  # reasons are for the leads reps see


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
