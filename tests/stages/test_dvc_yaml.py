"""dvc.yaml names exactly what each stage uses, and dvc.lock is what a fresh `make run` writes.

* deps: the code `leadscore <stage>` runs (its import closure in pipeline/, package data included;
  tools/dvc_deps.py computes it), so editing any function a stage runs makes `dvc status` name the stage;
* params: the sections and keys its stage module reads from the settings;
* dvc.lock: the hashes of that code and the values of those params, as committed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pipeline.config import Settings
from tests.conftest import REPO

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = list(DVC_YAML["stages"])
NOT_PARAMS = {"paths"}  # where files live: dvc.yaml's ${paths.*}, not params a stage depends on


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dvc_deps", REPO / "tools" / "dvc_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_stage_depends_on_exactly_the_code_it_runs() -> None:
    problems = _tool().differences()
    assert not problems, "dvc.yaml deps are wrong; run `python tools/dvc_deps.py --write`:\n" + "\n".join(problems)


def test_the_closure_follows_lazy_imports_and_package_data() -> None:
    tool = _tool()
    score = {str(p.relative_to(REPO)) for p in tool.stage_files("score")}
    assert "pipeline/scoring/dask.py" in score  # imported inside a function, only for --engine dask
    assert "pipeline/explain/templates.yaml" in score and "pipeline/reporting/templates/lead_board.html.j2" in score
    assert "pipeline/modeling/grades.py" in score  # grade(): editing it must rerun score
    evaluate = {str(p.relative_to(REPO)) for p in tool.stage_files("evaluate")}
    assert "pipeline/modeling/grades.py" in evaluate and "pipeline/scoring/scorer.py" not in evaluate
    features = {str(p.relative_to(REPO)) for p in tool.stage_files("features")}
    assert {"pipeline/features/frameworks/bant.yaml", "pipeline/features/titles.yaml"} <= features


def test_every_data_file_in_the_package_is_opened_by_some_module() -> None:
    # Otherwise the closure could not see it, and a stage would not rerun when it changed.
    tool = _tool()
    opened: set[Path] = set()
    for module in (REPO / "pipeline").rglob("*.py"):
        for target in tool.data_files(module):
            opened |= set(tool._files_under(target)) if target.is_dir() else {target}
    data = {p for p in (REPO / "pipeline").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts}
    assert data - opened == set()


def _field_path(chain: list[str]) -> str:
    """The params path of an attribute chain on the settings: its parts while they are settings fields
    (``["score", "model_copy"]`` -> "score")."""
    model: Any = Settings
    path = []
    for part in chain:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            break
        path.append(part)
        model = fields[part].annotation
    return ".".join(path)


def settings_reads(module: Path) -> set[str]:
    """The params a module reads: ``settings.split.valid_fraction`` -> "split.valid_fraction", a section
    passed on whole (``settings.train``) -> "train"."""
    tree = ast.parse(module.read_text())
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    reads = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        chain: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            chain.insert(0, current.attr)
            current = current.value
        if isinstance(current, ast.Name) and current.id == "settings":
            reads.add(_field_path(chain))
    return reads - {""}


@pytest.mark.parametrize("stage", STAGES)
def test_params_are_exactly_the_sections_and_keys_the_stage_reads(stage: str) -> None:
    reads = {r for r in settings_reads(REPO / "pipeline" / "stages" / f"{stage}.py")
             if r.split(".")[0] not in NOT_PARAMS}
    declared = set(DVC_YAML["stages"][stage].get("params", []))
    missing = sorted(r for r in reads if not any(r == d or r.startswith(d + ".") for d in declared))
    unused = sorted(d for d in declared if not any(r == d or r.startswith(d + ".") or d.startswith(r + ".")
                                                   for r in reads))
    assert not missing and not unused, f"{stage}: params missing {missing}, declared but not read {unused}"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _lock() -> dict[str, Any]:
    return yaml.safe_load((REPO / "dvc.lock").read_text())


def test_dvc_lock_holds_the_code_and_params_of_this_commit() -> None:
    # A fresh `make run` rewrites dvc.lock with what it ran: the committed one must already say that,
    # or `git status` shows it modified after every fresh clone's first run.
    lock, settings = _lock()["stages"], yaml.safe_load((REPO / "params.yaml").read_text())
    stale = []
    for stage in STAGES:
        assert stage in lock, f"dvc.lock has no entry for {stage}: run `make run` and commit dvc.lock"
        entry = lock[stage]
        for dep in entry.get("deps", []):
            path = REPO / dep["path"]
            if not dep["path"].startswith("pipeline/"):
                continue
            if path.is_file() and _md5(path) != dep["md5"]:
                stale.append(f"{stage}: {dep['path']}")
        declared = {d["path"] for d in entry.get("deps", [])}
        wanted = {d for d in DVC_YAML["stages"][stage].get("deps", []) if str(d).startswith("pipeline/")}
        stale += [f"{stage}: {d} (not in dvc.lock)" for d in sorted(wanted - declared)]
        for key, value in entry.get("params", {}).get("params.yaml", {}).items():
            current: Any = settings
            for part in key.split("."):
                current = current[part]
            if current != value and yaml.safe_load(yaml.safe_dump(current)) != value:
                stale.append(f"{stage}: param {key}")
    assert not stale, "dvc.lock is stale (run `make run` and commit dvc.lock): " + ", ".join(stale)


def test_dvc_status_names_a_stage_whose_code_changed(tmp_path: Path) -> None:
    """By hand as a user would: copy the project, edit grade(), and `dvc status` names evaluate and score."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".venv", ".git", "data", "models", "mlruns",
                                                                   "mlflow.db", "__pycache__", ".*_cache"))
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    grades = project / "pipeline" / "modeling" / "grades.py"
    grades.write_text(grades.read_text().replace('"""A for score', '"""(edited) A for score'))
    env_bin = str(Path(sys.executable).parent)
    status = subprocess.run([f"{env_bin}/dvc", "status", "--json"], cwd=project, capture_output=True, text=True,
                            timeout=300)
    assert status.returncode == 0, status.stderr
    changed = yaml.safe_load(status.stdout) or {}
    for stage in ("evaluate", "score"):
        assert any("pipeline/modeling/grades.py" in str(item) for item in changed.get(stage, [])), (stage, changed)
    for stage in ("generate", "ingest", "features"):
        assert not any("pipeline/modeling/grades.py" in str(item) for item in changed.get(stage, [])), stage
