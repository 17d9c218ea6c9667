"""The docs match the code: every params key is in docs/params.md's table (and every key there exists),
every CLI command and option is in `leadscore --help` and in docs/cli.md, README.md stays a short map,
and every relative link and every backticked project path in README.md and docs/*.md exists."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from pipeline.cli import build_parser
from pipeline.config import Settings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PARAMS_DOC = DOCS / "params.md"
CLI_DOC = DOCS / "cli.md"
README_MAX_LINES = 200
# Sub-sections a user writes as whole mappings, documented as one row each (their own keys are
# documented in docs/own-export.md, "The `source:` section").
WHOLE = {"source.primary", "source.lookups", "source.events", "source.account"}
# Backticked paths under these folders must exist in the checkout.
CHECKED_ROOTS = ("pipeline/", "tests/", "tools/", "examples/", "benchmarks/", "notebooks/")


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


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a level-2 heading line), up to the next level-2 heading."""
    assert f"\n{heading}\n" in f"\n{text}", f"no {heading!r} heading"
    return f"\n{text}".split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def documented_keys() -> set[str]:
    """Keys named in the first column of docs/params.md's "Every key" table: `a.b.c`, then siblings as `d`."""
    table = _section(PARAMS_DOC.read_text(encoding="utf-8"), "## Every key")
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


def test_every_params_key_is_documented_in_docs_params() -> None:
    documented = documented_keys()
    wildcard = {k[:-2] for k in documented if k.endswith(".*")}
    missing = sorted(k for k in params_keys()
                     if k not in documented and not any(k.startswith(w + ".") for w in wildcard))
    assert not missing, f"params keys missing from the table in docs/params.md: {missing}"


def test_every_documented_key_exists() -> None:
    real = params_keys()
    stale = sorted(k for k in documented_keys()
                   if not k.endswith(".*") and k not in real and not any(r.startswith(k + ".") for r in real))
    assert not stale, f"docs/params.md documents params keys that do not exist: {stale}"


def test_every_cli_command_and_option_is_in_help_and_docs_cli() -> None:
    parser = build_parser()
    commands = CLI_DOC.read_text(encoding="utf-8")
    sub = next(a for a in parser._actions if a.dest == "command")
    top_help = parser.format_help()
    missing = []
    for action in parser._actions:  # leadscore --version
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help" and flag not in commands:
                missing.append(f"leadscore {flag} (not in docs/cli.md)")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        if name not in top_help:
            missing.append(f"{name} (not in leadscore --help)")
        if f"leadscore {name}" not in commands and not re.search(rf"[{{,]{name}[,}}]", commands):
            missing.append(f"{name} (not in docs/cli.md)")
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help",) and flag not in commands:
                    missing.append(f"{name} {flag} (not in docs/cli.md)")
                if flag not in command.format_help():
                    missing.append(f"{name} {flag} (not in its --help)")
    assert not missing, missing


# ---------------------------------------------------------------- links and paths


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (diagrams, sample output, YAML: not links or paths)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def relative_links(text: str) -> list[str]:
    """Targets of Markdown links ``[text](target)`` that point into the checkout (``file#anchor`` kept)."""
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _prose(text))
    external = re.compile(r"^[a-z][a-z0-9+.-]*:", flags=re.IGNORECASE)  # https:, mailto:, ...
    return [t for t in targets if not external.match(t) and not t.startswith("#")]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page: lower case, punctuation dropped, spaces as -."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", _prose(text), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _broken(doc: Path, link: str) -> bool:
    """A relative link from ``doc`` whose file or folder, or whose #anchor in that page, does not exist."""
    path, _, anchor = link.partition("#")
    target = doc.parent / path
    if not target.exists():
        return True
    return bool(anchor) and target.suffix == ".md" and anchor not in anchors(target.read_text(encoding="utf-8"))


def backticked_paths(text: str) -> list[str]:
    """Every word of an inline code span that starts with one of :data:`CHECKED_ROOTS`, e.g. the module
    in `pipeline/explain/treeshap.py` or the file in `leadscore run --params examples/maven_crm/params.yaml`."""
    paragraphs = re.split(r"\n\s*\n", _prose(text))  # a code span may wrap lines, not cross a paragraph
    spans = [span for paragraph in paragraphs for span in re.findall(r"`([^`]+)`", paragraph)]
    return [word.rstrip(".,;:)") for span in spans for word in span.split() if word.startswith(CHECKED_ROOTS)]


def _exists(path: str) -> bool:
    """A path as the docs write it exists: placeholders such as ``<layer>`` and ``*`` match anything."""
    pattern = re.sub(r"<[^>/]+>", "*", path.rstrip("/"))
    if any(c in pattern for c in "*?["):
        return any(REPO.glob(pattern))
    return (REPO / pattern).exists()


def test_readme_is_a_short_map_and_every_relative_link_resolves() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, (f"README.md has {len(lines)} lines (at most {README_MAX_LINES - 1}): "
                                           "move detail into docs/ and link to it")
    broken = []
    for doc in doc_files():
        links = relative_links(doc.read_text(encoding="utf-8"))
        broken += [f"{doc.relative_to(REPO)}: ({link})" for link in links if _broken(doc, link)]
    assert doc_files()[1:], "no docs/*.md pages"
    assert not broken, f"relative links to files, folders or anchors that do not exist: {broken}"


def test_every_backticked_project_path_in_the_docs_exists() -> None:
    stale = []
    for doc in doc_files():
        paths = backticked_paths(doc.read_text(encoding="utf-8"))
        stale += [f"{doc.relative_to(REPO)}: `{path}`" for path in paths if not _exists(path)]
    assert not stale, f"the docs name paths that do not exist (moved or renamed?): {stale}"


def test_the_doc_checks_catch_what_they_should() -> None:
    text = ("See [the CLI](cli.md#exit-codes), [a site](https://example.com) and [top](#top).\n"
            "Code in `pipeline/explain/treeshap.py`, `leadscore run --params\nexamples/x.yaml`, `dvc repro`.\n"
            "```\n[not a link](nowhere.md) `pipeline/not_prose.py`\n```\n")
    assert relative_links(text) == ["cli.md#exit-codes"]
    assert anchors("# Title\n## The `source:` section\n## Evaluate outputs: what is in git\n") == {
        "title", "the-source-section", "evaluate-outputs-what-is-in-git"}
    assert not _broken(CLI_DOC, "cli.md#exit-codes") and _broken(CLI_DOC, "cli.md#no-such-heading")
    assert _broken(CLI_DOC, "no-such-page.md")
    assert backticked_paths(text) == ["pipeline/explain/treeshap.py", "examples/x.yaml"]
    assert _exists("pipeline/explain/treeshap.py") and _exists("tests/<layer>/") and _exists("pipeline/stages/*.py")
    assert not _exists("pipeline/treeshap.py")
