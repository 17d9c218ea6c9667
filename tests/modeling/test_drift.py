import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DriftParams
from pipeline.contracts.features import FeatureSpec
from pipeline.modeling.drift import DriftCounter, drift_warning, psi, reference_profile
from pipeline.modeling.model import prepare_matrix

DRIFT = DriftParams()
WATCH, ACT = DRIFT.watch, DRIFT.act

SPECS = [
    FeatureSpec("employees", "numeric", "firmographic", "employees", "Employees"),
    FeatureSpec("pricing_visits", "numeric", "intent", "pricing_visits", "Pricing page visits"),
    FeatureSpec("fit", "numeric", "qualification", "fit", "Fit score"),
    FeatureSpec("flag", "numeric", "deal", "flag", "Always one"),
    FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
]
INDUSTRIES = ["finance", "health", "retail", "software"]
LEVELS = {"industry": INDUSTRIES}


def raw_batch(rng: np.random.Generator, n: int, *, fit_shift: float = 0.0,
              industry_p: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)) -> pd.DataFrame:
    """Leads from fixed distributions: a skewed size, a count that is 0 for 70% of leads, a normal
    score with 5% missing, a constant, and an industry with 3% missing."""
    visits = np.where(rng.random(n) < 0.7, 0, rng.geometric(0.3, n))
    fit = rng.normal(50 + fit_shift * 10, 10, n)
    fit[rng.random(n) < 0.05] = np.nan
    industry = rng.choice(np.array(INDUSTRIES, dtype=object), n, p=list(industry_p))
    industry[rng.random(n) < 0.03] = None
    return pd.DataFrame({"employees": np.rint(rng.lognormal(4, 1, n)), "pricing_visits": visits, "fit": fit,
                         "flag": 1.0, "industry": pd.Series(industry, dtype="str")})


def batch(rng: np.random.Generator, n: int, **shift: float | tuple[float, ...]) -> pd.DataFrame:
    return prepare_matrix(raw_batch(rng, n, **shift), specs=SPECS, levels=LEVELS)  # type: ignore[arg-type]


def scores_for(rng: np.random.Generator, n: int, *, a: float = 2.0) -> np.ndarray:
    return np.rint(100 * rng.beta(a, 5, n)).astype(int)


@pytest.fixture(scope="module")
def profile() -> dict:
    rng = np.random.default_rng(7)
    return reference_profile(batch(rng, 20_000), SPECS, scores_for(rng, 20_000), bins=DRIFT.bins)


def report_of(profile: dict, x: pd.DataFrame, scores: np.ndarray) -> dict:
    counter = DriftCounter(profile)
    counter.add(x, scores)
    return counter.report(watch=WATCH, act=ACT)


def feature(report: dict, name: str) -> dict:
    return next(f for f in report["features"] if f["name"] == name)


def test_a_fresh_sample_from_the_training_distributions_is_stable(profile: dict) -> None:
    rng = np.random.default_rng(8)
    report = report_of(profile, batch(rng, 5000), scores_for(rng, 5000))
    assert report["rows"] == 5000 and report["status"] == "ok"
    assert report["score"]["psi"] < WATCH
    assert all(f["psi"] < WATCH and f["status"] == "ok" for f in report["features"])
    assert report["drifted"] == [] and report["act"] == []
    assert drift_warning(report) is None


def test_a_shifted_numeric_feature_is_flagged_and_the_others_are_not(profile: dict) -> None:
    rng = np.random.default_rng(9)
    report = report_of(profile, batch(rng, 5000, fit_shift=1.0), scores_for(rng, 5000))
    fit = report["features"][0]  # sorted worst first
    assert fit["name"] == "fit" and fit["psi"] > ACT and fit["status"] == "act"
    assert report["act"] == report["drifted"] == ["fit"]
    assert all(f["psi"] < WATCH for f in report["features"][1:]) and report["score"]["status"] == "ok"
    warning = drift_warning(report)
    assert warning is not None and "act" in warning and "fit" in warning and "employees" not in warning


def test_a_categorical_whose_shares_change_is_flagged(profile: dict) -> None:
    rng = np.random.default_rng(10)
    report = report_of(profile, batch(rng, 5000, industry_p=(0.1, 0.1, 0.3, 0.5)), scores_for(rng, 5000))
    assert feature(report, "industry")["status"] == "act" and report["act"] == ["industry"]


def test_an_all_missing_feature_is_flagged(profile: dict) -> None:
    rng = np.random.default_rng(11)
    x = batch(rng, 2000).assign(employees=np.nan)
    report = report_of(profile, x, scores_for(rng, 2000))
    employees = feature(report, "employees")
    assert employees["status"] == "act" and employees["bins"][-1] == {
        "bin": "missing", "expected": 0.0, "actual": 1.0}
    assert "employees" in (drift_warning(report) or "")


def test_a_shifted_score_is_flagged_and_named(profile: dict) -> None:
    rng = np.random.default_rng(12)
    report = report_of(profile, batch(rng, 5000), scores_for(rng, 5000, a=5.0))
    assert report["score"]["status"] == "act" and report["status"] == "act" and report["drifted"] == []
    assert "score" in (drift_warning(report) or "")


def test_unseen_levels_in_a_raw_column_are_counted_apart_from_missing(profile: dict) -> None:
    x = batch(np.random.default_rng(13), 4).assign(
        industry=pd.Series(["finance", "mining", None, "finance"], dtype="str"))
    counter = DriftCounter(profile)
    counter.add(x, np.array([1, 2, 3, 4]))
    bins = {b["bin"]: b["actual"] for b in feature(counter.report(watch=WATCH, act=ACT), "industry")["bins"]}
    assert bins == {"finance": 0.5, "health": 0.0, "retail": 0.0, "software": 0.0, "unseen": 0.25, "missing": 0.25}


def test_chunked_merged_and_shipped_counts_give_the_same_report(profile: dict) -> None:
    rng = np.random.default_rng(14)
    x, scores = batch(rng, 5000, fit_shift=0.5), scores_for(rng, 5000)
    whole = report_of(profile, x, scores)

    chunked = DriftCounter(profile)
    partitions = []
    for start in range(0, len(x), 1234):
        chunk = slice(start, start + 1234)
        chunked.add(x.iloc[chunk], scores[chunk])
        part = DriftCounter(profile)
        part.add(x.iloc[chunk], scores[chunk])
        partitions.append(DriftCounter.from_dict(json.loads(json.dumps(part.to_dict()))))
    merged = partitions[0]
    for part in partitions[1:]:
        merged = merged.merge(part)

    assert chunked.report(watch=WATCH, act=ACT) == whole
    assert merged.report(watch=WATCH, act=ACT) == whole
    assert partitions[0].rows == 1234  # merging left its inputs alone


def test_round_trip_and_json_with_no_nan(profile: dict) -> None:
    rng = np.random.default_rng(15)
    counter = DriftCounter(profile)
    counter.add(batch(rng, 300), scores_for(rng, 300))
    again = DriftCounter.from_dict(json.loads(json.dumps(counter.to_dict(), allow_nan=False)))
    assert again.to_dict() == counter.to_dict()
    assert again.report(watch=WATCH, act=ACT) == counter.report(watch=WATCH, act=ACT)
    json.dumps(profile, allow_nan=False)
    json.dumps(counter.report(watch=WATCH, act=ACT), allow_nan=False)


def test_an_empty_batch_says_so(profile: dict) -> None:
    counter = DriftCounter(profile)
    counter.add(batch(np.random.default_rng(16), 10).iloc[:0], np.array([], dtype=int))
    report = counter.report(watch=WATCH, act=ACT)
    assert report["rows"] == 0 and report["status"] is None and "no rows" in report["note"]
    assert report["score"]["psi"] is None and all(f["psi"] is None for f in report["features"])
    assert report["drifted"] == report["act"] == [] and drift_warning(report) is None
    json.dumps(report, allow_nan=False)


def test_bins_for_ties_constants_missing_and_the_score(profile: dict) -> None:
    entries = {f["name"]: f for f in profile["features"]}
    assert entries["flag"]["edges"] == [1.0, np.nextafter(1.0, 2.0)] and entries["flag"]["shares"] == [0, 1, 0]
    visits = entries["pricing_visits"]
    assert visits["edges"][0] == 0.0 and visits["shares"][0] == 0.0  # nothing below the tied minimum
    assert visits["shares"][1] == pytest.approx(0.7, abs=0.01)  # the zeros share one bin
    assert entries["fit"]["missing"] == pytest.approx(0.05, abs=0.005)
    industry = entries["industry"]
    assert industry["levels"] == INDUSTRIES and industry["missing"] == pytest.approx(0.03, abs=0.005)
    assert math.fsum(industry["shares"]) + industry["missing"] == pytest.approx(1.0)

    frame = pd.DataFrame({"employees": [np.nan], "pricing_visits": [0.0], "fit": [np.nan], "flag": [2.0],
                          "industry": pd.Categorical([None], categories=INDUSTRIES)})
    counter = DriftCounter(profile)
    counter.add(frame, np.array([100]))
    report = counter.report(watch=WATCH, act=ACT)
    flag = feature(report, "flag")
    assert [b["bin"] for b in flag["bins"]] == ["< 1", "= 1", "> 1", "missing"]
    assert [b["actual"] for b in flag["bins"]] == [0, 0, 1, 0] and flag["status"] == "act"
    visit_bins = feature(report, "pricing_visits")["bins"]
    assert visit_bins[0]["bin"] == "< 0" and visit_bins[1]["bin"].startswith("[0, ") and visit_bins[1]["actual"] == 1
    score_bins = report["score"]["bins"]
    assert [b["bin"] for b in score_bins[:2]] == ["[0, 10)", "[10, 20)"] and score_bins[-1]["bin"] == "[90, 100]"
    assert score_bins[-1]["actual"] == 1

    counter.add(frame, np.array([10]))  # an edge falls in the bin above it
    assert counter.score_counts[1] == 1


def test_psi_on_hand_computed_numbers() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0.0
    # an empty bin is floored, on either side
    assert psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        -0.5 * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4))
    assert psi(np.array([0.0, 1.0]), np.array([0.0, 1.0]), floor=0.01) == 0.0
    assert isinstance(psi(np.array([0.5, 0.5]), np.array([0.4, 0.6])), float)


def test_counters_from_different_profiles_do_not_merge(profile: dict) -> None:
    rng = np.random.default_rng(17)
    other = reference_profile(batch(rng, 500), SPECS, scores_for(rng, 500), bins=5)
    with pytest.raises(ValueError, match="different reference"):
        DriftCounter(profile).merge(DriftCounter(other))
