"""The stage graph as read from dvc.yaml through DVC's API."""

from __future__ import annotations

import os

import pytest

from pipelines.dag import StageGraph, StageNode, load_graph
from pipelines.flow import Dispatch, schedule
from tests.pipelines.toy_repo import make_toy_repo


@pytest.fixture()
def toy(tmp_path, venv_env, monkeypatch):
    monkeypatch.setenv("PATH", venv_env["PATH"])
    return make_toy_repo(tmp_path / "toy")


def test_graph_comes_from_dvc_yaml(toy) -> None:
    graph = load_graph(toy)
    assert graph.names == ["a", "b", "c"]
    assert graph["c"].upstream == ("a", "b")
    assert graph["c"].deps == ("work.py", "out/a.json", "out/b.json")
    assert graph["b"].gpu and not graph["a"].gpu
    assert graph.run_after("b") == [] and graph.run_after("c") == ["a", "b"]
    assert graph.select(["a"]).names == ["a"]
    assert graph.select(["c"]).names == ["a", "b", "c"]
    with pytest.raises(KeyError, match="no stage 'z' in dvc.yaml; stages: a, b, c"):
        graph.select(["z"])


def test_the_repo_pipeline_loads(repo_root) -> None:
    cwd = os.getcwd()
    graph = load_graph(repo_root)
    assert "prepare_data" in graph.names
    assert "data/prepared" in graph["prepare_data"].outs
    assert os.getcwd() == cwd


def _node(name: str, deps: tuple[str, ...], outs: tuple[str, ...], gpu: bool = False) -> StageNode:
    return StageNode(name, "true", deps, outs, (), gpu, False)


def test_nested_paths_conflict_even_without_a_dvc_edge() -> None:
    graph = StageGraph(
        (
            _node("writer", ("src",), ("data/samples",)),
            _node("reader", ("data",), ("reports/r.json",)),
            _node("other", ("src",), ("reports/o.json",)),
        )
    )
    assert graph.run_after("reader") == ["writer"]
    assert graph.run_after("other") == []  # shares only a read-only dependency


def test_gpu_stages_queue_for_the_gpu_slots() -> None:
    graph = StageGraph(tuple(_node(n, (), (f"out/{n}",), gpu=True) for n in "pqr"))
    assert schedule(graph, gpu_slots=1) == {"p": [], "q": ["p"], "r": ["q"]}
    assert schedule(graph, gpu_slots=2) == {"p": [], "q": [], "r": ["p"]}


def test_dispatch_bounds_the_stages_at_once_and_shares_the_cores() -> None:
    # a, b, c independent; d after a and b.
    dispatch = Dispatch({"a": [], "b": [], "c": [], "d": ["a", "b"]}, jobs=2, cores=4)
    assert dispatch.start() == [("a", 2), ("b", 2)]  # two at once, half the cores each
    assert dispatch.start() == []  # no free job
    dispatch.finish("a")
    assert dispatch.start() == [("c", 2)]  # beside b: still half
    dispatch.finish("b")
    assert dispatch.share == 4  # c, left alone, follows it to every core
    dispatch.finish("c")
    assert dispatch.start() == [("d", 4)]  # alone: every core
    dispatch.finish("d")
    assert dispatch.finished


def test_dispatch_gives_at_least_one_thread_and_stops_after_a_failure() -> None:
    dispatch = Dispatch({name: [] for name in "abcde"}, jobs=4, cores=2)
    assert dispatch.start() == [(name, 1) for name in "abcd"]
    dispatch.stopped = True
    dispatch.finish("a")
    assert dispatch.start() == [] and not dispatch.finished  # b, c, d still run
    for name in "bcd":
        dispatch.finish(name)
    assert dispatch.finished  # e never started
