"""The features stage: the leakage guard drops what gives the outcome away, measured as the features are built."""

import pytest

from pipeline.features.build import build_features


def test_leaky_and_personal_columns_are_not_features(small) -> None:
    names = set(small.features.names)
    sources = {s.source for s in small.features.specs}
    assert not (names | sources) & {"csm_assigned", "closed_date", "first_name", "last_name", "email",
                                    "company_name"}


def test_stage_reports_framework_shares_and_the_leakage_guard(small) -> None:
    report = small.features.report
    assert report["framework"] == "BANT"
    for shares in report["criteria"].values():
        assert sum(shares.values()) == pytest.approx(1.0)
    assert report["criteria"]["budget"]["unknown"] > 0.2  # a third of leads state no budget
    assert "csm_assigned" in report["leakage"]["dropped"]
    assert "csm_assigned" not in small.features.names


def test_the_leakage_guard_measured_group_by_group_matches_one_pass_over_the_matrix(small) -> None:
    # featurise measures each group of features as it is built (the intent features on other threads
    # meanwhile); the figures must be those of the guard run once over the finished matrix.
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
