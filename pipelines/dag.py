"""The stage graph of ``dvc.yaml``, read with DVC's own API (never a second copy of it).

A stage is annotated as needing a GPU in ``dvc.yaml`` with ``meta: {gpu: true}``. Two
stages *conflict* when one writes a path the other reads or writes (an output that
overlaps a dependency or an output of the other). DVC's graph already orders a
producer before its consumers; :meth:`StageGraph.run_after` adds the conflicts DVC
does not see as edges (paths nested inside one another), so that no two stages that
could touch the same file ever run at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StageNode:
    """One stage of ``dvc.yaml``: what it reads and writes, what must run before it."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    upstream: tuple[str, ...]
    gpu: bool
    frozen: bool

    def writes_into(self, other: StageNode) -> bool:
        """True when one of this stage's outputs overlaps a path ``other`` reads or writes."""
        return any(_overlap(out, path) for out in self.outs for path in other.deps + other.outs)


def _overlap(a: str, b: str) -> bool:
    a_parts, b_parts = Path(a).parts, Path(b).parts
    shorter = min(len(a_parts), len(b_parts))
    return a_parts[:shorter] == b_parts[:shorter]


@dataclass(frozen=True)
class StageGraph:
    """Stages in a topological order (every stage after all of its upstream stages)."""

    stages: tuple[StageNode, ...]

    def __getitem__(self, name: str) -> StageNode:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r} in dvc.yaml; stages: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def select(self, targets: Iterable[str] | None) -> StageGraph:
        """The targets and everything upstream of them (what ``dvc repro TARGET`` runs)."""
        wanted = list(targets or [])
        if not wanted:
            return self
        keep: set[str] = set()
        pending = [self[name].name for name in wanted]
        while pending:
            name = pending.pop()
            if name not in keep:
                keep.add(name)
                pending.extend(self[name].upstream)
        return StageGraph(tuple(stage for stage in self.stages if stage.name in keep))

    def run_after(self, name: str) -> list[str]:
        """Stages that must finish before ``name`` starts: its upstream stages, and every
        earlier stage that conflicts with it over a path."""
        stage = self[name]
        before = []
        for other in self.stages:
            if other.name == name:
                break
            if other.name in stage.upstream or other.writes_into(stage) or stage.writes_into(other):
                before.append(other.name)
        return before


def _relative(path: str, root: Path) -> str:
    """A repo-relative path, or the absolute path for files outside the repo."""
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def load_graph(repo_root: str | os.PathLike[str] = ".") -> StageGraph:
    """Read the stages of the DVC project at ``repo_root`` and order them."""
    import networkx as nx
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    root = Path(repo_root).resolve()
    # Stage addresses are relative to the working directory.
    with contextlib.chdir(root), Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to its upstream stage
        names = {stage: stage.addressing for stage in graph.nodes}
        nodes = {}
        for stage in graph.nodes:
            meta = getattr(stage, "meta", None) or {}
            nodes[names[stage]] = StageNode(
                name=names[stage],
                cmd=" && ".join(stage.cmd) if isinstance(stage.cmd, list) else str(stage.cmd),
                deps=tuple(
                    _relative(dep.fs_path, root)
                    for dep in stage.deps
                    if not isinstance(dep, ParamsDependency)
                ),
                outs=tuple(_relative(out.fs_path, root) for out in stage.outs),
                upstream=tuple(sorted(names[up] for up in graph.successors(stage))),
                gpu=bool(meta.get("gpu", False)),
                frozen=bool(stage.frozen),
            )
        # Reverse so producers come first; ties are broken by name, so the order is stable.
        order = list(nx.lexicographical_topological_sort(graph.reverse(), key=lambda s: names[s]))
    return StageGraph(tuple(nodes[names[stage]] for stage in order))
