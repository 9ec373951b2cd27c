"""The architecture's layers: imports only run downward, no two files import each other
(directly or round a longer circle), and stages do not import each other.

A module may import modules of its own layer or of a lower one, never of a higher one, so
that each layer can be read, tested and changed without the ones above it. Every import
counts, even one inside a function: deferring an import hides a cycle, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

from tools.imports import imports_of, module_file, python_files, relative

# The layers, lowest first. An entry ending in "/" is a folder (everything under it), any
# other entry a single file. A new module of wavegen_core must be placed here.
LAYERS: dict[str, tuple[str, ...]] = {
    "ground floor": (
        "wavegen_core/__init__.py",
        "wavegen_core/errors.py",
        "wavegen_core/files.py",
        "wavegen_core/progress.py",
        "wavegen_core/seeding.py",
        "wavegen_core/parallel.py",
        "wavegen_core/threads.py",
        "wavegen_core/param_types.py",
        "wavegen_core/checkpoint.py",
        "wavegen_core/audio/",
        "wavegen_core/midi/",
    ),
    "data": ("wavegen_core/data/",),
    "models": ("wavegen_core/models/",),
    # config composes the models' config classes into the params schema.
    "config": ("wavegen_core/params.py", "wavegen_core/profiles/"),
    "training and evaluation": ("wavegen_core/training/", "wavegen_core/evaluation/"),
    "entry points": ("wavegen_core/cli.py", "stages/", "pipelines/"),
}

SCANNED = ("wavegen_core", "stages", "pipelines")
# What stages share: everything, and what the training stages share.
SHARED_STAGE_MODULES = (
    "stages/_common.py",
    "stages/_training.py",
    "stages/_train_vocoder.py",
    "stages/_synthesize.py",
)
STAGES_PACKAGE = "stages/__init__.py"


def layer_of(path: str) -> str | None:
    """The name of the layer ``path`` (relative, POSIX) belongs to, or None if unplaced."""
    for name, entries in LAYERS.items():
        for entry in entries:
            if path == entry or (entry.endswith("/") and path.startswith(entry)):
                return name
    return None


def rank(layer: str) -> int:
    return list(LAYERS).index(layer)


def project_imports(root: Path) -> set[tuple[str, str]]:
    """Every (importer, imported) pair of project files, as relative POSIX paths."""
    pairs = set()
    for path in python_files(root, *SCANNED):
        for found in imports_of(root, path):
            target = module_file(root, found.name)
            if target is not None:
                pairs.add((relative(root, path), relative(root, target)))
    return pairs


def test_every_module_has_a_layer(repo_root) -> None:
    """A module outside the table would escape the layering check: place it first."""
    unplaced = [
        relative(repo_root, path)
        for path in python_files(repo_root, *SCANNED)
        if layer_of(relative(repo_root, path)) is None
    ]
    assert not unplaced, "\n".join(
        f"{path} has no layer yet: add it to LAYERS in tests/test_layers.py" for path in unplaced
    )


def test_every_project_import_names_a_module_of_the_repo(repo_root) -> None:
    """An import the scan cannot resolve to a file would be skipped by the layering check;
    it is also an import that fails when it runs."""
    unresolved = [
        f"{relative(repo_root, path)}:{found.line} imports {found.name}, which the repo lacks"
        for path in python_files(repo_root, *SCANNED)
        for found in imports_of(repo_root, path)
        if module_file(repo_root, found.name) is None
    ]
    assert not unresolved, "\n".join(unresolved)


def test_no_module_imports_a_higher_layer(repo_root) -> None:
    """A lower layer must not depend on a higher one, or the layers are layers in name only."""
    upward = []
    for importer, imported in sorted(project_imports(repo_root)):
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and rank(high) > rank(low):
            upward.append(f"{importer} ({low}) imports {imported} ({high})")
    assert not upward, f"{len(upward)} upward imports:\n" + "\n".join(upward)


def test_no_stage_module_imports_another_stage_module(repo_root) -> None:
    """Each stage is one box of the pipeline: what two stages share belongs in the library
    (or in stages/_common.py, stages/_training.py), not in one stage that the other
    reaches into."""
    allowed = {*SHARED_STAGE_MODULES, STAGES_PACKAGE}
    crossings = [
        f"{importer} imports {imported}: a stage module may import only "
        f"{' and '.join(SHARED_STAGE_MODULES)} of stages/"
        for importer, imported in sorted(project_imports(repo_root))
        if importer.startswith("stages/")
        and imported.startswith("stages/")
        and imported not in allowed | {importer}
    ]
    assert not crossings, "\n".join(crossings)


def import_circles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """One circle per knot of files that import each other: ``[a, b, ..., a]``."""
    graph = nx.DiGraph(sorted(pairs))
    graph.remove_edges_from(nx.selfloop_edges(graph))
    circles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        start = min(component)
        following = min(node for node in graph.successors(start) if node in component)
        circles.append([start, *nx.shortest_path(graph, following, start)])
    return sorted(circles)


def test_an_import_circle_is_found_and_named() -> None:
    pairs = {("a.py", "b.py"), ("b.py", "c.py"), ("c.py", "a.py"), ("c.py", "d.py")}
    assert import_circles(pairs) == [["a.py", "b.py", "c.py", "a.py"]]
    assert import_circles({("a.py", "b.py"), ("b.py", "c.py")}) == []


def test_no_import_circle_between_project_files(repo_root) -> None:
    """A circle of imports (a imports b, b imports a, or round a longer loop) ties its files
    together: none can be read or changed without the others. Imports under
    ``TYPE_CHECKING`` count, since a reader still has to follow them."""
    circles = import_circles(project_imports(repo_root))
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def imports_of_tests(path: Path) -> list[int]:
    """The lines of ``path`` that import the ``tests`` package or a module of it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "tests" for name in names):
            lines.append(node.lineno)
    return lines


def test_nothing_outside_tests_imports_tests(repo_root) -> None:
    """The tests may use the library, the benchmarks and the tools, never the other way
    round: what a tool shares with a test lives in tools/ (tools/workspace.py)."""
    packages = [
        folder.name
        for folder in sorted(repo_root.iterdir())
        if (folder / "__init__.py").is_file() and folder.name != "tests"
    ]
    files = [*sorted(repo_root.glob("*.py")), *python_files(repo_root, *packages)]
    found = [
        f"{relative(repo_root, path)}:{line} imports tests"
        for path in files
        for line in imports_of_tests(path)
    ]
    assert {"wavegen_core", "stages", "pipelines", "benchmarks", "tools"} <= set(packages)
    assert not found, "\n".join(found)
