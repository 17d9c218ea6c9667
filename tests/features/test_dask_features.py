"""`leadscore features --engine dask`: the intent features on a 2-worker LocalCluster equal the
local engine's, bit for bit, on a written export and on an events file built to hold every
corner the routing has (keys and accounts no record has, records with neither, missing times
and types, a key listed under two accounts, row groups with dictionaries of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.contracts.files import EVENTS_FILE
from pipeline.errors import ConfigError
from pipeline.features.dask import DaskEvents
from pipeline.features.intent import intent_features
from pipeline.stages import features as features_stage
from pipeline.stages import ingest as ingest_stage
from tests.conftest import make_settings

distributed = pytest.importorskip("distributed")

WINDOWS = [7, 30, 90]
TYPES = ["demo", "email", "visit"]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """One LocalCluster for the module, reached by address as an existing scheduler would be."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_the_dask_stage_writes_the_local_stage_matrix(tmp_path: Path, scheduler: str) -> None:
    from pipeline.data.generate import generate, write_export

    settings = make_settings(tmp_path, generate={"n_leads": 1500, "n_accounts": 300})
    write_export(generate(params=settings.generate, seed=settings.seed), raw_dir=settings.paths.raw,
                 truth_dir=settings.paths.ground_truth)
    ingest_stage.run(settings)
    local = features_stage.run(settings)
    local_bytes = (settings.paths.features / "features.parquet").read_bytes()
    on_dask = features_stage.run(settings, engine="dask", scheduler=scheduler)

    assert any(c.startswith("acct_") for c in local.matrix.columns)  # the account roll-ups are in the comparison
    pd.testing.assert_frame_equal(on_dask.matrix, local.matrix)
    assert on_dask.specs == local.specs and on_dask.report == local.report
    assert (settings.paths.features / "features.parquet").read_bytes() == local_bytes


def _events_file(path: Path, rng: np.random.Generator) -> pd.DataFrame:
    """Three row groups: two as ingest writes them (one shared key dictionary), one with a dictionary of its own."""
    n = 6000
    frame = pd.DataFrame({
        "event_key": pd.Series(np.array([f"k{i}" for i in range(60)] + [None], dtype=object)[
            rng.integers(0, 61, size=n)], dtype="string"),
        "event_type": pd.Series(np.array([*TYPES, "rare", None], dtype=object)[
            rng.choice(5, p=[0.3, 0.3, 0.3, 0.05, 0.05], size=n)], dtype="string"),
        "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86_400, size=n), unit="s"),
    })
    frame.loc[rng.choice(n, 40, replace=False), "timestamp"] = pd.NaT
    keys = pa.array(frame["event_key"], type=pa.large_string())
    table = pa.table({"event_key": pc.dictionary_encode(keys),
                      "event_type": pa.array(frame["event_type"], type=pa.large_string()),
                      "timestamp": pa.array(frame["timestamp"], type=pa.timestamp("us"))})
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table.slice(0, 2500))
        writer.write_table(table.slice(2500, 2500))
        own = table.slice(5000).set_column(0, "event_key", pc.dictionary_encode(keys.slice(5000)))
        writer.write_table(own)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    return frame


def test_the_routing_keeps_every_event_a_record_needs(tmp_path: Path, scheduler: str, rng: np.random.Generator
                                                      ) -> None:
    path = tmp_path / EVENTS_FILE
    frame = _events_file(path, rng)
    keys = pd.Series([f"k{i}" for i in range(0, 70)] + [None, "k3"], dtype="string")  # k60-k69: no events
    accounts = pd.Series([f"a{i % 9}" if i % 7 else None for i in range(len(keys))], dtype="string")
    as_of = pd.Series(pd.Timestamp("2025-03-01") + pd.to_timedelta(rng.integers(0, 700, size=len(keys)), unit="D"))
    key_accounts = pd.DataFrame({
        "event_key": pd.Series([f"k{i}" for i in range(60)] + ["k5", "k8"], dtype="string"),
        "account_key": pd.Series([f"a{i % 11}" for i in range(60)] + ["a2", None], dtype="string"),
    })
    expected = intent_features(keys, as_of, frame, types=TYPES, windows=WINDOWS, half_life_days=30,
                               weights={"demo": 3.0}, accounts=accounts, key_accounts=key_accounts)
    for partitions in (1, 5):
        with DaskEvents(path, scheduler=scheduler, partitions=partitions) as events:
            got, types = events.activity(keys, as_of, types=None, limit=3, windows=WINDOWS, half_life_days=30,
                                         weights={"demo": 3.0}, accounts=accounts, key_accounts=key_accounts)
            assert events.latest() == frame.loc[frame["event_key"].notna(), "timestamp"].max()
        assert types == TYPES  # the three most frequent
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert (expected["acct_events_90d"] > 0).any() and (expected["evt_demo_90d"] > 0).any()


def test_dask_options_are_refused_without_the_dask_engine(tmp_path: Path) -> None:
    from pipeline.cli import main

    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\n")
    assert main(["features", "--params", str(params), "--workers", "2"]) == ConfigError.exit_code
