"""`--engine dask`: a 2-worker LocalCluster (no external server) scores a partitioned Parquet
dataset exactly as the local engine does, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import score_with

pytest.importorskip("distributed")


def test_dask_engine_equals_the_local_engine_row_for_row(small, models_dir: Path, open_rows: pd.DataFrame,
                                                         tmp_path: Path) -> None:
    models = models_dir
    rows = open_rows.copy()  # the fixture is shared by the session
    rows.loc[5, "record_id"] = None  # quarantined by both engines, with the same row number
    dataset = tmp_path / "leads"
    dataset.mkdir()
    for i, part in enumerate(range(0, len(rows), 200)):  # a partitioned dataset: several files
        rows.iloc[part:part + 200].to_parquet(dataset / f"part-{i:03d}.parquet", index=False)

    local = score_with(small, models, dataset, tmp_path / "local.parquet")
    dask = score_with(small, models, dataset, tmp_path / "dask.parquet", engine="dask", workers=2)

    assert (dask.rows_in, dask.rows_out, dask.quarantined) == (local.rows_in, local.rows_out, 1)
    expected = pd.read_parquet(tmp_path / "local.parquet").drop(columns="scored_at")
    got = pd.read_parquet(tmp_path / "dask.parquet").drop(columns="scored_at")
    assert len(got) == len(rows) - 1
    pd.testing.assert_frame_equal(got, expected)
    assert pd.read_csv(tmp_path / "dask.quarantine.csv").equals(pd.read_csv(tmp_path / "local.quarantine.csv"))
    assert dask.drift_path is not None and local.drift_path is not None
    assert json.loads(dask.drift_path.read_text()) == json.loads(local.drift_path.read_text())
