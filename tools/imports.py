"""Static import scanning: which project modules a file imports (the architecture tests
and `tools.code_deps` read it).

Every import statement of a file counts, wherever it sits (module level, inside a function
or method, under ``if TYPE_CHECKING:``, in a ``try``): an import tucked into a function to
dodge a cycle is still a dependency, and hiding it is what these tests must catch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# The top-level packages that make up the project: imports of anything else are ignored.
PROJECT_PACKAGES = ("wavegen_core", "stages", "pipelines")


@dataclass(frozen=True)
class Import:
    """One project import: the imported module's dotted name and where the import is."""

    name: str
    line: int


def is_project_module(name: str) -> bool:
    return name.split(".")[0] in PROJECT_PACKAGES


def python_files(root: Path, *folders: str) -> list[Path]:
    """Every ``.py`` file under ``folders`` (relative to ``root``), sorted, as absolute paths."""
    return sorted(path for folder in folders for path in (root / folder).rglob("*.py"))


def relative(root: Path, path: Path) -> str:
    """``path`` as a POSIX path relative to ``root``: the form messages and dvc.yaml use."""
    return path.relative_to(root).as_posix()


def module_name(root: Path, path: Path) -> str:
    """The dotted name of the module at ``path``: a package's ``__init__.py`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_file(root: Path, name: str) -> Path | None:
    """The file that defines module ``name`` in the repo (``a/b.py`` or ``a/b/__init__.py``),
    or None when the repo has no such module."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _from_base(root: Path, path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from X import ...`` reads from, relative imports made absolute."""
    if node.level == 0:
        return node.module or ""
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package.pop()  # a plain module's package is its parent
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _from_targets(root: Path, base: str, node: ast.ImportFrom) -> list[str]:
    """What ``from base import a, b`` imports: ``base.a`` where that is a module of the
    repo (``from pkg import submodule``), else ``base`` itself (``from mod import name``)."""
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        is_submodule = alias.name != "*" and module_file(root, submodule) is not None
        targets.append(submodule if is_submodule else base)
    return targets


def imports_of(root: Path, path: Path) -> list[Import]:
    """Every project module the file at ``path`` imports, anywhere in it, in source order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[Import] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _from_targets(root, _from_base(root, path, node), node)
        else:
            continue
        found |= {Import(name, node.lineno) for name in names if is_project_module(name)}
    return sorted(found, key=lambda found_import: (found_import.line, found_import.name))


def imported_files(root: Path, path: Path) -> set[Path]:
    """The files of the project modules ``path`` imports (those the repo defines)."""
    files = (module_file(root, found.name) for found in imports_of(root, path))
    return {file for file in files if file is not None}


def parent_inits(root: Path, path: Path) -> set[Path]:
    """The ``__init__.py`` of every package above ``path``: importing ``a.b.c`` runs
    ``a/__init__.py`` and ``a/b/__init__.py`` first."""
    inits = set()
    for folder in path.relative_to(root).parents:
        init = root / folder / "__init__.py"
        if folder != Path(".") and init.is_file():
            inits.add(init)
    return inits - {path}


def import_closure(root: Path, start: Path) -> set[Path]:
    """``start`` and every project file importing it runs, by the static scan: what it
    imports, transitively, with the packages' ``__init__.py`` files (and what they import)."""
    seen: set[Path] = set()
    pending = {start}
    while pending:
        path = pending.pop()
        seen.add(path)
        pending |= (imported_files(root, path) | parent_inits(root, path)) - seen
    return seen
