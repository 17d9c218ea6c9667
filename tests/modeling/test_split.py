"""Which closed records train, validate and test: by time (ties by id, as a full sort would), else
stratified and seeded."""

import pandas as pd
import pytest

from pipeline.modeling.split import SPLIT_STRATIFIED, SPLIT_TIME, split_rows


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
