"""The docs match the code: every params key is in the README's params table, and every CLI
command and option is in `leadscore --help` and the README's command-line section."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from pipeline.cli import build_parser
from pipeline.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
# Sub-sections a user writes as whole mappings, documented as one row each (their own keys are
# documented in "The `source:` section").
WHOLE = {"source.primary", "source.lookups", "source.events", "source.account"}


def _model_of(annotation: typing.Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def params_keys(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    """Every settable key, dotted (sections recurse; a mapping or list is one key)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(field.annotation)
        if sub is not None and key not in WHOLE:
            keys |= params_keys(sub, key + ".")
        else:
            keys.add(key)
    return keys


def documented_keys() -> set[str]:
    """Keys named in the first column of the README's params table: `a.b.c`, then siblings as `d`."""
    text = README.read_text(encoding="utf-8")
    table = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        parent = ""
        for name in names:
            name = re.sub(r"\.<[^>]+>$", "", name)  # `source.lookups.<name>`: the mapping itself
            if "." in name:
                parent = name.rpartition(".")[0]
                keys.add(name)
            elif parent:
                keys.add(f"{parent}.{name}")
            else:
                keys.add(name)
    return keys


def test_every_params_key_is_documented_in_the_readme() -> None:
    documented = documented_keys()
    wildcard = {k[:-2] for k in documented if k.endswith(".*")}
    missing = sorted(k for k in params_keys()
                     if k not in documented and not any(k.startswith(w + ".") for w in wildcard))
    assert not missing, f"params keys missing from the README's params table: {missing}"


def test_every_documented_key_exists() -> None:
    real = params_keys()
    stale = sorted(k for k in documented_keys()
                   if not k.endswith(".*") and k not in real and not any(r.startswith(k + ".") for r in real))
    assert not stale, f"the README documents params keys that do not exist: {stale}"


def test_every_cli_command_and_option_is_in_help_and_readme() -> None:
    parser = build_parser()
    text = README.read_text(encoding="utf-8")
    commands = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    sub = next(a for a in parser._actions if a.dest == "command")
    top_help = parser.format_help()
    missing = []
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        if name not in top_help:
            missing.append(f"{name} (not in leadscore --help)")
        if f"leadscore {name}" not in commands and not re.search(rf"[{{,]{name}[,}}]", commands):
            missing.append(f"{name} (not in the README's command line section)")
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help",) and flag not in commands:
                    missing.append(f"{name} {flag} (not in the README's command line section)")
                if flag not in command.format_help():
                    missing.append(f"{name} {flag} (not in its --help)")
    assert not missing, missing
