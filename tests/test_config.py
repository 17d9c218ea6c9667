from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import ConfigError, Settings, load_settings, parse_settings, read_settings
from tests.conftest import REPO


def test_repo_params_load_and_match_the_declared_defaults() -> None:
    settings = load_settings(REPO / "params.yaml")
    assert settings.source.kind == "synthetic"
    assert settings.generate.n_leads == 20_000
    # params.yaml is the defaults written out, every key of it: so an example (or any partial params
    # file) layered over the code's defaults is layered over params.yaml.
    assert read_settings(REPO / "params.yaml") == parse_settings({})
    assert settings.source.dir == settings.paths.raw  # the synthetic export is read where generate writes it


def test_relative_paths_resolve_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.yaml").write_text("paths:\n  raw: elsewhere/raw\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings("p.yaml").paths.raw == tmp_path / "elsewhere" / "raw"


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"train": {"learning_rat": 0.1}})
    assert "train.learning_rat: unknown key (did you mean 'learning_rate'?)" in str(err.value)


def test_unknown_top_level_section_is_named() -> None:
    with pytest.raises(ConfigError, match=r"trian: unknown key \(did you mean 'train'\?\)"):
        parse_settings({"trian": {}})


def test_wrong_type_names_the_key_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"train": {"num_leaves": "many"}})
    assert "train.num_leaves" in str(err.value)
    assert "'many'" in str(err.value)


def test_out_of_range_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"generate\.dirty_fraction"):
        parse_settings({"generate": {"dirty_fraction": 2}})


def test_cross_field_rules_are_checked() -> None:
    with pytest.raises(ConfigError, match="grade_bands"):
        parse_settings({"score": {"grade_bands": [20, 50, 75]}})
    with pytest.raises(ConfigError, match="export_date"):
        parse_settings({"generate": {"start_date": "2025-01-01", "export_date": "2025-02-01"}})


def test_unreadable_files_fail_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="params file not found"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(listy)


def test_empty_file_means_all_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_settings(empty).train == Settings().train


# ---------------------------------------------------------------- the shipped params and examples

EXAMPLES = sorted((REPO / "examples").glob("*/params.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_an_example_holds_only_its_source_and_takes_every_other_key_from_the_defaults(example: Path) -> None:
    assert list(yaml.safe_load(example.read_text())) == ["source"]
    settings, defaults = read_settings(example), read_settings(REPO / "params.yaml")
    assert settings.model_copy(update={"source": defaults.source}) == defaults


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_leadscore_params_prints_every_key_of_an_example_and_reads_back_the_same(example: Path, capsys,
                                                                                 tmp_path: Path) -> None:
    assert main(["params", "-q", "--params", str(example)]) == 0
    printed = tmp_path / "params.yaml"
    printed.write_text(capsys.readouterr().out)
    assert read_settings(printed) == read_settings(example)
    assert set(yaml.safe_load(printed.read_text())) == set(parse_settings({}).model_dump())
