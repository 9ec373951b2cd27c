"""dvc.yaml's code deps: each stage lists exactly the project code it runs.

DVC reruns a stage only when a dep changes, so a module a stage imports but does not
list is a change DVC misses (a stale output), and a module it lists but does not import
is a change that reruns it for nothing (hours of training, on the GPU stages). The code a
stage runs is what its module imports, transitively, by the static scan (imports inside
functions included), plus what importing it really loads (modules found by discovery).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dvc.repo import Repo

from tests.conftest import REPO_ROOT
from tests.imports import PROJECT_PACKAGES, import_closure, module_file, relative

# For each stage module, the repo files importing it loads, or the error it raised.
Loaded = dict[str, dict[str, Any]]

# Imports each stage module named in argv in turn, printing the repo files each one loads,
# then forgets the project's modules (not the third-party ones, so torch loads only once)
# so that the next stage module's import runs every project module afresh.
LOADED_FILES_SCRIPT = """
import importlib, json, sys, traceback
from pathlib import Path

root, prefix = Path.cwd().resolve(), Path(sys.prefix).resolve()

def repo_file(module):
    # Some modules have a made-up __file__ (torch.ops: "_ops.py"): only real paths count.
    file = getattr(module, "__file__", None)
    if not file or not Path(file).is_absolute() or not Path(file).is_file():
        return None
    path = Path(file).resolve()
    inside = path.is_relative_to(root) and not path.is_relative_to(prefix)
    return path.relative_to(root).as_posix() if inside else None

loaded = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        loaded[name] = {"error": traceback.format_exc(limit=-1)}
    else:
        files = {repo_file(module) for module in list(sys.modules.values())}
        loaded[name] = {"files": sorted(files - {None})}
    for key, module in list(sys.modules.items()):
        if repo_file(module) or key.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[key]
print("LOADED " + json.dumps(loaded))
"""


@dataclass(frozen=True)
class Stage:
    """What the tests need of one dvc.yaml stage, as DVC resolves it."""

    name: str
    cmds: tuple[str, ...]
    deps: tuple[str, ...]


def dvc_stages(root: Path) -> list[Stage]:
    """Every stage of dvc.yaml, ``foreach`` stages expanded (``train_vocoder@gan``)."""
    with Repo(str(root)) as repo:
        return [
            Stage(
                stage.addressing,
                (stage.cmd,) if isinstance(stage.cmd, str) else tuple(stage.cmd),
                tuple(normalised(root, dep.def_path) for dep in stage.deps),
            )
            for stage in repo.index.stages
        ]


def normalised(root: Path, path: str) -> str:
    """A dep's path relative to the repo, POSIX, without ``./`` or a trailing slash."""
    return Path(os.path.relpath(os.path.normpath(root / path), root)).as_posix()


def parse_module(cmds: tuple[str, ...]) -> str | None:
    """``stages.<module>`` from the one command ``python -m stages.<module> [args...]``."""
    argv = shlex.split(cmds[0]) if len(cmds) == 1 else []
    shaped = len(argv) >= 3 and argv[:2] == ["python", "-m"] and argv[2].startswith("stages.")
    no_shell = not {"&&", "||", ";", "|"} & set(argv)
    return argv[2] if shaped and no_shell else None


def stage_module(stage: Stage) -> str:
    module = parse_module(stage.cmds)
    assert module, f"{stage.name}: cmd {stage.cmds!r} is not `python -m stages.<module> [args]`"
    return module


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(f"{dep}/")


def is_code(dep: str) -> bool:
    """Whether ``dep`` is project code (checked here) rather than data (left alone)."""
    return any(covers(package, dep) for package in PROJECT_PACKAGES)


STAGES = dvc_stages(REPO_ROOT)


@pytest.fixture(scope="module")
def loaded_files(repo_root) -> Loaded:
    """For each stage module, the repo files importing it loads: one interpreter for all."""
    modules = sorted({module for stage in STAGES if (module := parse_module(stage.cmds))})
    result = subprocess.run(
        [sys.executable, "-c", f"PROJECT_PACKAGES = {PROJECT_PACKAGES!r}\n{LOADED_FILES_SCRIPT}"]
        + modules,
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    assert lines, f"importing the stage modules failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1].removeprefix("LOADED "))


def used_files(root: Path, stage: Stage, loaded: Loaded) -> set[str]:
    """The project files the stage's code uses: static import closure plus what it loads."""
    module = stage_module(stage)
    path = module_file(root, module)
    assert path, f"{stage.name}: runs {module}, which is no module of the repo"
    runtime = loaded[module]
    assert "error" not in runtime, (
        f"{stage.name}: importing {module} fails (`python -c 'import {module}'` for the whole"
        f" traceback):\n{runtime['error']}"
    )
    static = {relative(root, file) for file in import_closure(root, path)}
    return static | set(runtime["files"])


@pytest.fixture(scope="module")
def used(repo_root, loaded_files) -> Callable[[Stage], set[str]]:
    """:func:`used_files` of a stage, worked out once per stage module (``train_vocoder@gan``
    and ``train_vocoder@flow`` run the same code)."""
    cache: dict[str, set[str]] = {}

    def used_by(stage: Stage) -> set[str]:
        module = stage_module(stage)
        if module not in cache:
            cache[module] = used_files(repo_root, stage, loaded_files)
        return cache[module]

    return used_by


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_every_imported_file_is_a_dep(stage: Stage, repo_root, used) -> None:
    """A change to code a stage runs must rerun it: every file it uses is a dep."""
    misses = [
        f"{stage.name}: imports {file}, which dvc.yaml does not list in its deps"
        for file in sorted(used(stage))
        if not any(covers(dep, file) for dep in stage.deps)
    ]
    assert not misses, "\n".join(misses)


def padding_of(root: Path, stage: Stage, dep: str, used: set[str]) -> list[str]:
    """Why code dep ``dep`` of ``stage`` lists more than the stage uses (empty if it does not)."""
    if not any(covers(dep, file) for file in used):
        return [f"{stage.name}: lists {dep}, which it does not import"]
    if not (root / dep).is_dir():
        return []
    unused = sorted({relative(root, path) for path in (root / dep).rglob("*.py")} - used)
    return [
        f"{stage.name}: lists the directory {dep}, but does not import {file} in it;"
        " list the files it does use"
        for file in unused
    ]


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_no_code_dep_lists_code_the_stage_does_not_import(stage: Stage, repo_root, used) -> None:
    """A change to code a stage does not run must not rerun it: every code dep is used,
    and a directory dep only where the stage uses every module in it."""
    files = used(stage)
    padding = [
        line
        for dep in filter(is_code, stage.deps)
        for line in padding_of(repo_root, stage, dep, files)
    ]
    assert not padding, "\n".join(padding)
