"""The code each DVC stage runs, and the `pipeline/` lines of its `deps:` in dvc.yaml.

A stage's command is `leadscore <stage>`: it runs pipeline/cli.py and what it imports at module level,
then pipeline/stages/<stage>.py and everything that imports, at any depth and wherever the import
stands (a lazy import inside a function counts), plus the package data those modules open (a
`Path(__file__)...` expression naming a file or folder beside them). A folder all of whose files are
in that set is written as the folder.

    python tools/dvc_deps.py            # print the deps each stage needs
    python tools/dvc_deps.py --check    # exit 1, naming the differences, if dvc.yaml is not exactly that
    python tools/dvc_deps.py --write    # rewrite the pipeline/ lines of each stage's deps in dvc.yaml

tests/stages/test_dvc_yaml.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"
DVC_YAML = ROOT / "dvc.yaml"
IGNORED = ("__pycache__",)
# Path(__file__)[.resolve()][.parent ...][.with_name("x")][ / "y" ...]
DATA_PATH = re.compile(r"""Path\(__file__\)(?P<resolve>\.resolve\(\))?(?P<parents>(?:\.parent)*)"""
                       r"""(?:\.with_name\(\s*["'](?P<name>[^"']+)["']\s*\))?(?P<joins>(?:\s*/\s*["'][^"']+["'])*)""")


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The package's modules that ``path`` imports (``from pipeline.x import y`` names module
    ``pipeline.x`` and, when y is a module, ``pipeline.x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m) is not None}


def data_files(path: Path) -> set[Path]:
    """Files and folders that a module opens through ``Path(__file__)`` expressions."""
    out = set()
    for match in DATA_PATH.finditer(path.read_text(encoding="utf-8")):
        target = path
        for _ in range(match["parents"].count(".parent")):
            target = target.parent
        if match["name"]:
            target = target.with_name(match["name"])
        for part in re.findall(r"""["']([^"']+)["']""", match["joins"]):
            target = target / part
        if target != path and target.exists():
            out.add(target)
    return out


def closure(modules: set[str]) -> set[Path]:
    """Every file of the package that ``modules`` run: modules, their packages' __init__, data files."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        file = module_file(module)
        assert file is not None, module
        todo.extend(imported_modules(file))
    files: set[Path] = set()
    for module in seen:
        file = module_file(module)
        assert file is not None
        files.add(file)
        for target in data_files(file):
            files |= set(_files_under(target)) if target.is_dir() else {target}
    return files


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not any(part in IGNORED for part in p.parts)]


def stage_files(stage: str) -> set[Path]:
    """What `leadscore <stage>` runs: the CLI's module-level imports, then the stage module's closure."""
    cli = ROOT / PACKAGE / "cli.py"
    return closure({f"{PACKAGE}.cli", *imported_modules(cli, top_level_only=True)} - {f"{PACKAGE}.cli"}
                   | {f"{PACKAGE}.stages.{stage}"}) | {cli}


def as_deps(files: set[Path]) -> list[str]:
    """The files as dvc.yaml deps, relative to the repository: a folder wholly in ``files`` as the folder."""
    def collapse(folder: Path) -> list[Path]:
        inside = _files_under(folder)
        if inside and all(f in files for f in inside) and folder != ROOT / PACKAGE:
            return [folder]
        out: list[Path] = []
        for child in sorted(folder.iterdir()):
            if child.name in IGNORED:
                continue
            if child.is_dir():
                out += collapse(child)
            elif child in files:
                out.append(child)
        return out

    return sorted(str(p.relative_to(ROOT)) for p in collapse(ROOT / PACKAGE))


def stages() -> list[str]:
    return list(yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"])


def declared(stage: str) -> list[str]:
    deps = yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"][stage].get("deps", [])
    return sorted(d for d in deps if str(d).startswith(f"{PACKAGE}/"))


def differences() -> list[str]:
    """What dvc.yaml gets wrong, one line per stage and dep."""
    problems = []
    for stage in stages():
        wanted, have = set(as_deps(stage_files(stage))), set(declared(stage))
        problems += [f"{stage}: missing dep {d}" for d in sorted(wanted - have)]
        problems += [f"{stage}: dep {d} is not code the stage runs" for d in sorted(have - wanted)]
    return problems


def write() -> None:
    """Rewrite the ``pipeline/`` lines of every stage's deps in dvc.yaml, in place, keeping the rest."""
    lines = DVC_YAML.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    stage, in_deps = None, False
    for line in lines:
        head = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
        if head:
            stage, in_deps = head[1], False
        elif re.match(r"^    deps:\s*$", line):
            in_deps = True
            out.append(line)
            assert stage is not None
            out += [f"      - {dep}\n" for dep in as_deps(stage_files(stage))]
            continue
        elif in_deps and not re.match(r"^      (- |#)", line):
            in_deps = False
        if in_deps and re.match(rf"^      - {PACKAGE}/", line):
            continue
        out.append(line)
    DVC_YAML.write_text("".join(out), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if dvc.yaml differs")
    parser.add_argument("--write", action="store_true", help="rewrite the pipeline/ deps in dvc.yaml")
    args = parser.parse_args()
    if args.write:
        write()
    if args.check or args.write:
        problems = differences()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for stage in stages():
        print(f"{stage}:")
        print("\n".join(f"  - {dep}" for dep in as_deps(stage_files(stage))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
