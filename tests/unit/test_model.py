import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import RoutingParams
from pipeline.contracts.features import FeatureSet, FeatureSpec
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.errors import DataError, ModelError
from pipeline.explain.reasons import Groups, reasons
from pipeline.explain.shap import Explainer
from pipeline.modeling.grades import grade
from pipeline.modeling.model import load_model, prepare_matrix
from pipeline.modeling.split import SPLIT_STRATIFIED, SPLIT_TIME, split_rows
from pipeline.modeling.train import save_model
from pipeline.scoring.raising import score_of
from pipeline.scoring.routing import next_step
from tests.conftest import PARAMS_SHA256, scorer_for, train_on

SPECS = [FeatureSpec("industry", "categorical", "firmographic", "industry", "Industry"),
         FeatureSpec("employees", "numeric", "firmographic", "employees", "Employees")]


def test_time_split_puts_the_newest_records_in_test() -> None:
    labeled = pd.DataFrame({
        "record_id": [f"D{i:02d}" for i in range(20)],
        "as_of": pd.date_range("2024-01-01", periods=20, freq="D")[::-1],
        "label": [0.0, 1.0] * 10,
    })
    split, method = split_rows(labeled, valid_fraction=0.2, test_fraction=0.25, seed=0)
    assert method == SPLIT_TIME
    assert split.value_counts().to_dict() == {"train": 11, "valid": 4, "test": 5}
    newest = labeled.sort_values("as_of")
    assert split[newest.index[-5:]].eq("test").all()
    assert split[newest.index[:11]].eq("train").all()
    assert labeled.loc[split == "train", "as_of"].max() < labeled.loc[split == "valid", "as_of"].min()


def test_time_split_breaks_ties_on_the_cut_date_by_record_id_as_a_full_sort_would(rng) -> None:
    # Many records share each decision date, so the cut falls inside a date: there the ids decide.
    n = 5000
    labeled = pd.DataFrame({"record_id": [f"D{i}" for i in rng.permutation(n)],
                            "as_of": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D"),
                            "label": rng.integers(0, 2, n).astype(float)}, index=rng.permutation(n) * 3)
    split, _ = split_rows(labeled, valid_fraction=0.15, test_fraction=0.2, seed=0)
    order = labeled.sort_values(["as_of", "record_id"], kind="stable").index
    n_test, n_valid = round(n * 0.2), round(n * 0.15)
    expected = pd.Series("train", index=labeled.index, dtype=object)
    expected[order[n - n_test - n_valid:n - n_test]] = "valid"
    expected[order[n - n_test:]] = "test"
    pd.testing.assert_series_equal(split, expected)


def test_without_dates_the_split_is_stratified_and_seeded() -> None:
    labeled = pd.DataFrame({"record_id": [f"R{i:03d}" for i in range(200)], "as_of": pd.Timestamp("2024-01-01"),
                            "label": [1.0] * 40 + [0.0] * 160})
    split, method = split_rows(labeled, valid_fraction=0.15, test_fraction=0.2, seed=3)
    assert method == SPLIT_STRATIFIED
    assert split.value_counts().to_dict() == {"train": 130, "test": 40, "valid": 30}
    assert labeled.loc[split == "test", "label"].mean() == pytest.approx(0.2)
    again, _ = split_rows(labeled.sample(frac=1, random_state=1), valid_fraction=0.15, test_fraction=0.2, seed=3)
    assert again.sort_index().equals(split.sort_index())


def test_unseen_and_missing_categories_become_missing_not_errors() -> None:
    frame = pd.DataFrame({"industry": ["software", "aerospace", None], "employees": ["12", 40, None]})
    x = prepare_matrix(frame, specs=SPECS, levels={"industry": ["retail", "software"]})
    assert list(x["industry"].cat.categories) == ["retail", "software"]
    assert x["industry"].isna().tolist() == [False, True, True]
    assert x["employees"].tolist()[:2] == [12.0, 40.0]


def test_missing_feature_column_is_named() -> None:
    with pytest.raises(ModelError, match="employees"):
        prepare_matrix(pd.DataFrame({"industry": ["x"]}), specs=SPECS, levels={"industry": []})


def test_same_data_and_params_give_byte_identical_models(small, small_model, tmp_path: Path) -> None:
    first = save_model(small_model, tmp_path / "a", params_sha256=PARAMS_SHA256)
    again = train_on(small)
    second = save_model(again, tmp_path / "b", params_sha256=PARAMS_SHA256)
    for name in (MODEL_FILE, MODEL_META_FILE):  # the metadata too: no clock, no commit in it
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first == second


def test_load_model_refuses_a_tampered_model_file(small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    assert load_model(tmp_path).version.startswith("lgbm-")
    with (tmp_path / MODEL_FILE).open("a") as fh:
        fh.write("\n")
    with pytest.raises(ModelError, match="does not match"):
        load_model(tmp_path)
    (tmp_path / MODEL_META_FILE).unlink()
    with pytest.raises(ModelError, match="run `leadscore train` first"):
        load_model(tmp_path)


def test_too_few_outcomes_in_a_slice_is_a_clear_error(small) -> None:
    matrix = small.features.matrix.copy()
    newest = matrix["label"].notna() & (matrix["as_of"] >= matrix.loc[matrix["label"].notna(), "as_of"].quantile(0.8))
    matrix.loc[newest, "label"] = 0.0
    with pytest.raises(DataError, match=r"the test slice has 0 won and \d+ lost deals \(needs at least 20 won"):
        train_on(small, features=FeatureSet(matrix, small.features.specs), seed=1)


def test_shap_contributions_add_up_to_the_raw_score(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    x = model.matrix(small.features.matrix.head(300))
    phi, base = Explainer(model.booster, route="auto").explain(x)
    raw = model.booster.predict(x, raw_score=True)
    np.testing.assert_allclose(phi.sum(axis=1) + base, raw, atol=1e-6)


def test_grades_follow_the_bands() -> None:
    assert grade(np.array([100, 75, 74, 50, 49, 25, 24, 0]), [75, 50, 25]).tolist() == \
        ["A", "A", "B", "B", "C", "C", "D", "D"]


def test_score_frame_keeps_every_row_in_order_with_worded_reasons(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    rows = small.features.matrix.sample(200, random_state=0)
    out = scorer_for(model, small.settings).score(rows, scored_at="2026-01-01T00:00:00Z", detail=True)
    assert out["record_id"].tolist() == rows["record_id"].tolist()
    assert out["score"].between(0, 100).all()
    assert out["probability"].between(0, 1).all()
    assert set(out["grade"]) <= {"A", "B", "C", "D"}
    assert set(out["next_step"]) <= {"sales_ready", "nurture", "disqualify"}
    worded = [json.loads(f) + json.loads(a) for f, a in zip(out["reasons_for"], out["reasons_against"], strict=True)]
    assert all(len(w) >= 1 for w in worded)  # every lead has at least one worded reason
    texts = [item["text"] for w in worded for item in w] + [t for c in out.filter(like="what_would_raise") for t in
                                                             out[c] if isinstance(t, str)]
    snake = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
    names = {s.name for s in model.specs}
    assert not [t for t in texts if snake.search(t) or any(n in t for n in names if "_" in n)]


def test_what_would_raise_equals_a_real_rescore_of_the_modified_lead(small, small_model, tmp_path: Path) -> None:
    save_model(small_model, tmp_path, params_sha256=PARAMS_SHA256)
    model = load_model(tmp_path)
    rows = small.features.matrix[small.features.matrix["outcome"] == "open"].head(300)
    out = scorer_for(model, small.settings).score(rows, scored_at="2026-01-01T00:00:00Z", detail=True)
    checked = 0
    for i, detail in enumerate(out["what_would_raise_detail"]):
        for item in json.loads(detail):
            group = Groups.of(model.specs)
            members = group.members[group.titles.index(item["group"])]
            x = model.matrix(rows.iloc[[i]])
            assert item["from"] == score_of(model, x)[0] == out["score"].iloc[i]
            for j in members:  # the same change, made by hand
                spec = model.specs[j]
                typical = model.meta.typical_won[spec.name]
                if spec.kind == "categorical":
                    x[spec.name] = pd.Categorical([typical], categories=x[spec.name].cat.categories)
                else:
                    x[spec.name] = float(typical)  # type: ignore[arg-type]
            assert score_of(model, x)[0] == item["to"] > item["from"]
            assert spec.role in ("intent", "qualification")  # never firmographics
            checked += 1
    assert checked > 0


def test_reasons_group_derived_columns_under_the_field_a_rep_knows() -> None:
    specs = [FeatureSpec("evt_pricing_page_view_7d", "numeric", "intent", "pricing_page_view", "Pricing 7d"),
             FeatureSpec("evt_pricing_page_view_30d", "numeric", "intent", "pricing_page_view", "Pricing 30d"),
             FeatureSpec("seniority", "categorical", "contact", "job_title", "Contact seniority"),
             FeatureSpec("employees", "numeric", "firmographic", "employees", "Company size (employees)")]
    x = pd.DataFrame({"evt_pricing_page_view_7d": [4.0], "evt_pricing_page_view_30d": [6.0],
                      "seniority": pd.Categorical(["vp"]), "employees": [12.0]})
    phi = np.array([[0.30, 0.15, 0.20, -0.40]])
    reasons_for, against = reasons(x, phi, specs, k=3, min_contribution=0.05)
    assert [r["text"] for r in reasons_for[0]] == ["Pricing page views: 4 in the last 7 days",
                                                   "VP-level (decision maker) contact"]
    assert reasons_for[0][0]["contribution"] == pytest.approx(0.45)
    assert [r["text"] for r in against[0]] == ["Company has 12 employees"]
    # Below the threshold: left out.
    assert reasons(x, phi * 0.1, specs, k=3, min_contribution=0.05)[0] == [[]]


def test_next_step_names_the_rule_that_fired() -> None:
    routing = RoutingParams(sales_ready_min_score=60, sales_ready_min_criteria=2, disqualify_below_score=10)
    assert next_step(72, 3, 4, routing) == (
        "sales_ready", "score 72 >= 60 and 3 of 4 qualification criteria met (>= 2)")
    assert next_step(72, 1, 4, routing)[0] == "nurture"
    assert next_step(5, 4, 4, routing) == ("disqualify", "score 5 < 10")


def test_optuna_tuning_is_seeded_starts_from_the_given_params_and_uses_validation_only(small) -> None:
    first = train_on(small, seed=3, tuning_trials=4)
    again = train_on(small, seed=3, tuning_trials=4)
    tuning = first.description["tuning"]
    assert tuning["trials"] == 4 and tuning == again.description["tuning"]  # same trials, same choice
    assert first.booster.model_to_string() == again.booster.model_to_string()
    assert tuning["best_valid_auc"] >= tuning["given_params_valid_auc"]  # trial 0 is params.yaml's own
    assert first.description["lightgbm_params"]["num_leaves"] == tuning["best_params"]["num_leaves"]
    assert first.description["valid_auc"] == pytest.approx(tuning["best_valid_auc"], abs=1e-6)
