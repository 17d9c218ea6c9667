"""Class 2 of the hardening corpus, in params: common real values that used to be internal errors.

The rules the cases check: every number in params has a range the code can act on (a seed the
libraries take, threads an OpenMP runtime can start, rows this tool could hold), and a value out of
it is a ConfigError naming the key; and a mapped field may not take a name the pipeline uses for a
column of its own (``region``, ``seniority``, ``outcome``, ``record_id`` ...)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pipeline.cli import main
from pipeline.config import ColumnParams, ConfigError, Settings, parse_settings
from pipeline.contracts.fields import RESERVED_NAMES, reserved_use
from pipeline.data.inspect import draft_source, inspect_file
from tests.data.test_ingest import flat_source

DATA_BOUNDS = {(ColumnParams, "min"), (ColumnParams, "max")}  # the user's own bounds on a column's values


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel], str, Any]]:
    """(dotted key, model, name, field info) of every int or float param, through nested sections."""
    found = []
    for name, info in model.model_fields.items():
        kinds = [info.annotation]
        while kinds:
            kind = kinds.pop()
            if get_origin(kind) in (Union, types.UnionType):
                kinds += list(get_args(kind))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found += _numeric_fields(kind, f"{prefix}{name}.")
            elif kind in (int, float):
                found.append((f"{prefix}{name}", model, name, info))
    return found


def _bounds(info: Any) -> tuple[Any, Any]:
    low = high = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            low = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        if isinstance(m, annotated_types.Le | annotated_types.Lt):
            high = m.le if isinstance(m, annotated_types.Le) else m.lt
    return low, high


NUMERIC = [f for f in _numeric_fields(Settings) if (f[1], f[2]) not in DATA_BOUNDS]


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def test_every_number_in_params_has_a_range() -> None:
    """Class 2 rule: no int or float param is unbounded (1e20 rows, 100,000 threads, a seed of -5)."""
    assert len(NUMERIC) > 30
    unbounded = [key for key, _, _, info in NUMERIC if None in _bounds(info)]
    assert unbounded == []


@pytest.mark.parametrize(("raw", "key"), [
    ({"seed": -5}, "seed"),
    ({"seed": "1e20"}, "seed"),
    ({"seed": 1e20}, "seed"),
    ({"seed": 2**31}, "seed"),
    ({"train": {"num_threads": 100_000}}, "train.num_threads"),
    ({"generate": {"n_leads": 10**12}}, "generate.n_leads"),
    ({"features": {"event_windows_days": [7, 10**9]}}, "event_windows_days"),
    ({"features": {"event_weights": {"demo_request": -1}}}, "event_weights.demo_request"),
])
def test_out_of_range_numbers_name_their_key(raw: dict[str, Any], key: str) -> None:
    """Class 2 rule: each listed value is refused by params validation, naming the key."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_settings(raw)


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(NUMERIC), above=st.booleans(), by=st.integers(min_value=1, max_value=10**30))
def test_property_any_number_beyond_its_range_names_the_key(field: tuple, above: bool, by: int) -> None:
    """Class 2 property: for any numeric param, any value past either end of its range is a ConfigError
    that names the dotted key."""
    key, _, _, info = field
    low, high = _bounds(info)
    value = (high + by) if above else (low - by)
    with pytest.raises(ConfigError) as err:
        parse_settings(_nest(key, value))
    assert key.rsplit(".", 1)[-1] in str(err.value)


def test_the_cli_refuses_a_negative_seed_before_any_work(tmp_path: Path, capsys) -> None:
    """Class 2 rule, through the CLI: exit 2 and the key, no traceback, nothing written."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": -5, "paths": {"raw": str(tmp_path / "raw")}}))
    assert main(["generate", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "seed: Input should be greater than or equal to 0" in err and "Traceback" not in err
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("name", ["region", "seniority", "outcome", "record_id", "label", "as_of", "event_key",
                                  "icp_fit", "framework_points", "evt_demo_request_7d", "fw_budget", "acct_events_7d"])
def test_a_field_named_like_a_pipeline_column_is_refused(tmp_path: Path, name: str) -> None:
    """Class 2 rule: a mapped field may not take a name the pipeline gives a column of its own."""
    source = flat_source(tmp_path)
    source["primary"]["columns"][name] = {"column": "title", "kind": "categorical", "role": "contact"}
    with pytest.raises(ConfigError, match=rf"source\.primary\.columns\.{name}: '{name}' is a name leadscore uses"):
        parse_settings({"source": source})


def test_every_column_the_pipeline_derives_is_reserved(small) -> None:
    """Class 2 rule, kept true: every records and feature-matrix column that is not a declared field
    is a reserved name (so the refusal above covers whatever the pipeline derives)."""
    declared = {f.name for f in small.ingested.fields}
    derived = (set(small.ingested.records.columns) | set(small.features.matrix.columns)) - declared
    assert derived and {c for c in derived if reserved_use(c) is None} == set()
    assert not declared & set(RESERVED_NAMES)


def test_inspect_never_drafts_a_reserved_field_name(tmp_path: Path) -> None:
    """Class 2 rule for drafts: headers named like pipeline columns get other field names, and the draft loads."""
    rows = ["Id,Stage,Closed,Region,Seniority,Label"] + [
        f"{i},{'Won' if i % 2 else 'Lost'},2024-03-{1 + i % 28:02d},{'EMEA' if i % 3 else 'AMER'},"
        f"{'Senior' if i % 2 else 'Junior'},{'x' if i % 4 else 'y'}" for i in range(60)]
    (tmp_path / "export.csv").write_text("\n".join(rows) + "\n")
    result = inspect_file(tmp_path / "export.csv")
    draft = draft_source(result)
    names = set(draft["primary"]["columns"])
    assert names and not {n for n in names if reserved_use(n)}
    parse_settings({"source": {**draft, "dir": str(tmp_path)}})
