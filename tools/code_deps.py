"""dvc.yaml's code deps, worked out from what each stage imports.

``python -m tools.code_deps`` prints the stages whose code deps differ from what they
import (exit 1 if any); ``--write`` rewrites those lists in dvc.yaml in place, leaving
every other line (data deps, params, comments) as it is.

The code a stage runs is what its module imports, transitively, by the static scan
(imports inside functions included), plus what importing it really loads (modules found
by discovery, such as every vocoder family's config). A stage of one vocoder family
(``train_vocoder@gan``) also runs that family's model, which the registry imports only
when asked for it. A folder is listed instead of its files where the stage uses every
file in it. A ``foreach`` over the vocoder families shares one list: the code all
families run, each family's own folder as ``wavegen_core/models/vocoders/${item}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tools.imports import PROJECT_PACKAGES, import_closure, module_file, relative

REPO_ROOT = Path(__file__).resolve().parents[1]
FAMILIES_FOLDER = "wavegen_core/models/vocoders"
FAMILY_DEP = f"{FAMILIES_FOLDER}/${{item}}"
# Files a folder dep may hold besides the code it lists: bytecode, which .dvcignore skips.
IGNORED_IN_FOLDERS = ("__pycache__",)

# For each "module" or "module:family" in argv: import the module (and, with a family,
# ask the registry for that family's spec), print the repo files that loaded, then forget
# the project's modules (not third-party ones, so torch loads once) for the next one.
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
for key in sys.argv[1:]:
    name, _, family = key.partition(":")
    try:
        importlib.import_module(name)
        for one in filter(None, family.split("+")):
            registry = importlib.import_module("wavegen_core.models.vocoders.registry")
            registry.vocoder_spec(one)
    except BaseException:
        loaded[key] = {"error": traceback.format_exc(limit=-1)}
    else:
        files = {repo_file(module) for module in list(sys.modules.values())}
        loaded[key] = {"files": sorted(files - {None})}
    for module_name, module in list(sys.modules.items()):
        if repo_file(module) or module_name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[module_name]
print("LOADED " + json.dumps(loaded))
"""


@dataclass(frozen=True)
class Stage:
    """What the checks need of one dvc.yaml stage, as DVC resolves it."""

    name: str
    cmds: tuple[str, ...]
    deps: tuple[str, ...]

    @property
    def template(self) -> str:
        """The stage's name in dvc.yaml: ``train_vocoder`` for ``train_vocoder@gan``."""
        return self.name.partition("@")[0]

    @property
    def item(self) -> str:
        """The ``foreach`` key (``gan``), or "" for a plain stage."""
        return self.name.partition("@")[2]


def dvc_stages(root: Path) -> list[Stage]:
    """Every stage of dvc.yaml, ``foreach`` stages expanded (``train_vocoder@gan``)."""
    from dvc.repo import Repo

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


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(f"{dep}/")


def is_code(dep: str) -> bool:
    """Whether ``dep`` is project code (checked here) rather than data (left alone)."""
    return any(covers(package, dep) for package in PROJECT_PACKAGES)


def vocoder_families(root: Path) -> set[str]:
    """The family folders of ``vocoders/`` (each with its ``config.py``)."""
    return {path.parent.name for path in (root / FAMILIES_FOLDER).glob("*/config.py")}


def run_key(stage: Stage, families: set[str]) -> str:
    """What the loader script imports for ``stage``: its module, and its family if any
    (``module:family``), with the family whose checkpoint ``--mel-source`` names, whose
    model the stage also runs (``module:family+source``)."""
    module = parse_module(stage.cmds)
    if module is None:
        raise ValueError(f"{stage.name}: cmd {stage.cmds!r} is not `python -m stages.<module>`")
    runs = [stage.item] if stage.item in families else []
    argv = shlex.split(stage.cmds[0])
    if "--mel-source" in argv[:-1]:
        source = Path(argv[argv.index("--mel-source") + 1]).parent.name
        if source not in families:
            raise ValueError(f"{stage.name}: --mel-source is no family's checkpoint")
        runs.append(source)
    return f"{module}:{'+'.join(runs)}" if runs else module


def loaded_files(root: Path, keys: Iterable[str]) -> dict[str, dict[str, list[str] | str]]:
    """For each run key, the repo files importing it loads (or the error it raised), all
    in one interpreter."""
    script = f"PROJECT_PACKAGES = {PROJECT_PACKAGES!r}\n{LOADED_FILES_SCRIPT}"
    result = subprocess.run(
        [sys.executable, "-c", script, *sorted(set(keys))],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    if not lines:
        raise RuntimeError(f"importing the stage modules failed:\n{result.stdout}\n{result.stderr}")
    loaded: dict[str, dict[str, list[str] | str]] = json.loads(lines[-1].removeprefix("LOADED "))
    return loaded


def used_files(root: Path, key: str, loaded: Mapping[str, Mapping[str, object]]) -> set[str]:
    """The project files run key ``key`` uses: static import closure plus what it loads."""
    module, _, family = key.partition(":")
    runtime = loaded[key]
    if "error" in runtime:
        raise RuntimeError(f"importing {key} fails:\n{runtime['error']}")
    starts = [module] + [
        f"wavegen_core.models.vocoders.{one}.model" for one in filter(None, family.split("+"))
    ]
    static: set[str] = set()
    for name in starts:
        path = module_file(root, name)
        if path is None:
            raise ValueError(f"{name} is no module of the repo")
        static |= {relative(root, file) for file in import_closure(root, path)}
    files = runtime["files"]
    assert isinstance(files, list)
    return static | set(files)


def stage_uses(root: Path, stages: list[Stage]) -> dict[str, set[str]]:
    """For each stage (by name), the project files it runs."""
    families = vocoder_families(root)
    keys = {stage.name: run_key(stage, families) for stage in stages}
    loaded = loaded_files(root, keys.values())
    cache: dict[str, set[str]] = {}
    for key in set(keys.values()):
        cache[key] = used_files(root, key, loaded)
    return {name: cache[key] for name, key in keys.items()}


def folder_files(root: Path, folder: str) -> set[str]:
    """Every file under ``folder`` that a folder dep hashes (bytecode aside)."""
    return {
        relative(root, path)
        for path in (root / folder).rglob("*")
        if path.is_file() and not set(IGNORED_IN_FOLDERS) & set(path.relative_to(root).parts)
    }


def compressed(root: Path, files: set[str]) -> list[str]:
    """``files`` as deps: a folder in place of its files wherever every file the folder
    holds is among them (the topmost such folder), files elsewhere."""
    complete: dict[str, bool] = {}

    def is_complete(folder: str) -> bool:
        if folder not in complete:
            complete[folder] = folder_files(root, folder) <= files
        return complete[folder]

    deps = set()
    for file in files:
        dep = file
        parents = [p.as_posix() for p in Path(file).parents if p != Path(".")]
        for folder in reversed(parents):  # topmost first
            if folder not in PROJECT_PACKAGES and is_complete(folder):
                dep = folder
                break
        deps.add(dep)
    return sorted(deps)


def template_deps(root: Path, stages: list[Stage], uses: Mapping[str, set[str]]) -> list[str]:
    """The code deps of one dvc.yaml entry, whose resolved stages are ``stages``.

    A ``foreach`` over the vocoder families lists what any family runs outside its own
    folder, then its own folder as ``${item}``; any other ``foreach`` runs the same code
    for every item."""
    families = vocoder_families(root)
    if stages[0].item in families:
        shared: set[str] = set()
        for stage in stages:
            own = folder_files(root, f"{FAMILIES_FOLDER}/{stage.item}")
            missing = own - uses[stage.name]
            if missing:
                raise ValueError(f"{stage.name} does not use {sorted(missing)} of its family")
            shared |= uses[stage.name] - own
        return [*compressed(root, shared), FAMILY_DEP]
    first = uses[stages[0].name]
    for stage in stages[1:]:
        if uses[stage.name] != first:
            raise ValueError(f"{stage.name} runs other code than {stages[0].name}")
    return compressed(root, first)


def expected_deps(
    root: Path, stages: list[Stage] | None = None, uses: Mapping[str, set[str]] | None = None
) -> dict[str, list[str]]:
    """For each dvc.yaml entry (``train_vocoder``, not ``train_vocoder@gan``), its code
    deps; ``stages`` and their ``uses`` are worked out here unless given."""
    stages = dvc_stages(root) if stages is None else stages
    uses = stage_uses(root, stages) if uses is None else uses
    entries: dict[str, list[Stage]] = {}
    for stage in stages:
        entries.setdefault(stage.template, []).append(stage)
    return {name: template_deps(root, group, uses) for name, group in entries.items()}


# --------------------------------------------------------------------------- dvc.yaml text

STAGE_LINE = re.compile(r"^  ([A-Za-z_][\w-]*):\s*$")
DEPS_LINE = re.compile(r"^(\s+)deps:\s*$")
ITEM_LINE = re.compile(r"^(\s+)- (\S+)\s*$")


def written_deps(text: str) -> dict[str, list[str]]:
    """The code deps each stage entry of dvc.yaml's text lists, in order."""
    found: dict[str, list[str]] = {}
    stage = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line and not line.startswith(" "):
            stage = None
        if match := STAGE_LINE.match(line):
            stage = match.group(1)
        elif stage and (deps := DEPS_LINE.match(line)):
            found[stage] = []
            index += 1
            while index < len(lines) and _in_block(lines[index], len(deps.group(1))):
                if (item := ITEM_LINE.match(lines[index])) and is_code(item.group(2)):
                    found[stage].append(item.group(2))
                index += 1
            continue
        index += 1
    return found


def _in_block(line: str, indent: int) -> bool:
    stripped = line.lstrip()
    return not stripped or stripped.startswith("#") or len(line) - len(stripped) > indent


def rewritten(text: str, deps: Mapping[str, list[str]]) -> str:
    """dvc.yaml's ``text`` with each stage's code deps replaced by ``deps[stage]``, put
    where its first code dep was; data deps, comments and everything else stay."""
    out: list[str] = []
    stage = None
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() and not line.startswith(" "):
            stage = None
        out.append(line)
        if match := STAGE_LINE.match(line):
            stage = match.group(1)
        elif stage is not None and stage in deps and (found := DEPS_LINE.match(line)):
            indent = len(found.group(1))
            index += 1
            placed = False
            while index < len(lines) and _in_block(lines[index], indent):
                item = ITEM_LINE.match(lines[index])
                if item and is_code(item.group(2)):
                    if not placed:
                        out += [f"{item.group(1)}- {dep}\n" for dep in deps[stage]]
                        placed = True
                else:
                    out.append(lines[index])
                index += 1
            continue
        index += 1
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    parser.add_argument("--root", type=Path, default=REPO_ROOT)
    args = parser.parse_args(argv)
    path = args.root / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    expected = expected_deps(args.root)
    written = written_deps(text)
    stale = sorted(name for name in expected if written.get(name) != expected[name])
    if args.write:
        path.write_text(rewritten(text, expected), encoding="utf-8")
        print(f"rewrote the code deps of {len(stale)} stage entries: {', '.join(stale) or '-'}")
        return 0
    for name in stale:
        now, want = set(written.get(name, [])), set(expected[name])
        print(f"{name}: add {sorted(want - now)}, remove {sorted(now - want)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
