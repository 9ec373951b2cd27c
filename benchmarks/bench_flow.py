"""Orchestration: the Prefect flow against `dvc repro` on the same pipelines.

``python -m benchmarks.bench_flow`` (in ``make bench``; about 35 minutes on 2 cores).

* the whole DAG of this repository (every stage of ``dvc.yaml`` at the shipped
  profile), in two fresh clones: cold (nothing computed), then fully cached, then
  twice after an edit that only the vocoder families read (each family's
  ``train.steps`` one more), so that the families' training and synthesis rerun: one
  after another under `dvc repro`; under the flow one GPU stage at a time (the
  default) and then all families at once (``--gpu-slots``);
* overhead per stage: wall time of `wavegen run` (the flow, against a running local
  Prefect server) minus `dvc repro`, over the number of stages, on a pipeline of
  trivial stages;
* concurrency in isolation: two independent CPU-bound stages, each on one thread, run
  one after another by `dvc repro` and at the same time by the flow.

Each measurement uses its own fresh git repo in a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.dag import load_graph
from pipelines.server import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]
TRIVIAL_STAGES = 8
# Pure-Python work (one thread by construction), about 15 s per stage on this machine,
# long enough that the flow's fixed start-up (importing Prefect, about 3 s) is amortised.
BUSY_ITERATIONS = 400_000_000


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    return _run_output(cmd, cwd, env)[0]


def _run_output(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def _git_repo(root: Path, env: dict[str, str]) -> None:
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
    ):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)


def _stages_repo(root: Path, env: dict[str, str], commands: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    stages = "".join(
        f"  {name}:\n    cmd: {cmd}\n    outs:\n      - out/{name}.txt\n"
        for name, cmd in commands.items()
    )
    (root / "dvc.yaml").write_text("stages:\n" + stages)
    _git_repo(root, env)
    return root


def _trivial_repo(root: Path, env: dict[str, str]) -> Path:
    return _stages_repo(
        root,
        env,
        {f"s{i}": f"mkdir -p out && echo {i} > out/s{i}.txt" for i in range(TRIVIAL_STAGES)},
    )


def _busy_repo(root: Path, env: dict[str, str]) -> Path:
    busy = (
        f'python -c "n = sum(i * i for i in range({BUSY_ITERATIONS})); '
        "import os; os.makedirs('out', exist_ok=True); open('out/{name}.txt', 'w').write(str(n))\""
    )
    return _stages_repo(root, env, {name: busy.format(name=name) for name in ("left", "right")})


def _default_repo(root: Path, env: dict[str, str]) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(root)], check=True)
    return root


def _edit_vocoder_steps(repo: Path) -> None:
    """One more training step for every vocoder family: an edit only their stages read."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for family in params["vocoder"]["families"]:
        params["vocoder"][family]["train"]["steps"] += 1
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _stage_seconds(flow_output: str) -> dict[str, float]:
    """The per-stage lines `wavegen run` prints: stage, status, seconds."""
    seconds = {}
    for line in flow_output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] == "ran" and parts[3] == "s":
            seconds[parts[0]] = float(parts[2])
    return seconds


def whole_dag(tmp: Path, env: dict[str, str], cold_only: bool = False) -> list[dict[str, Any]]:
    """This repository's DAG under both runners: cold, cached, vocoder families edited.

    The vocoder families' stages are GPU stages (``meta: {gpu: true}``), which a flow
    run starts one at a time by default (one GPU per worker): the edit is measured so,
    and again with ``--gpu-slots`` at the number of families, which lets them share
    the CPU cores the way they would share a node's GPUs.
    """
    stages = len(load_graph(REPO_ROOT).names)
    by_dvc, by_flow = _default_repo(tmp / "dag-dvc", env), _default_repo(tmp / "dag-flow", env)
    families = yaml.safe_load((by_flow / "params.yaml").read_text())["vocoder"]["families"]
    rows = []
    for label, edit, slots in (
        (f"whole DAG, cold ({stages} stages)", False, 1),
        (f"whole DAG, fully cached ({stages} stages)", False, 1),
        ("vocoder families retrained, one GPU stage at a time (default)", True, 1),
        (f"vocoder families retrained, --gpu-slots {len(families)}", True, len(families)),
    ):
        if cold_only and rows:
            break
        if edit:
            _edit_vocoder_steps(by_dvc)
            _edit_vocoder_steps(by_flow)
        dvc_s = _run(["dvc", "repro"], by_dvc, env)
        flow = ["wavegen", "run", "--gpu-slots", str(slots), "--repo", str(by_flow)]
        flow_s, output = _run_output(flow, REPO_ROOT, env)
        seconds = _stage_seconds(output)
        row: dict[str, Any] = {
            "name": label,
            "dvc_repro_s": round(dvc_s, 2),
            "flow_s": round(flow_s, 2),
            "flow_over_dvc": round(flow_s / dvc_s, 2),
            "stages_ran_in_flow": len(seconds),
            # What the stages took inside the flow, added up as if one after another.
            "stage_seconds_sum": round(sum(seconds.values()), 1),
        }
        if "cached" in label:
            row["overhead_per_stage_s"] = round((flow_s - dvc_s) / stages, 3)
        else:
            row["speedup"] = round(dvc_s / flow_s, 2)
        if edit:
            family_stages = [n for n in seconds if n.rpartition("@")[2] in families]
            row["family_stage_seconds_sum"] = round(sum(seconds[n] for n in family_stages), 1)
        rows.append(row)
    return rows


def _compare(
    name: str, make, stages: int, tmp: Path, env: dict[str, str], cached: bool
) -> dict[str, Any]:
    """Time `dvc repro` and the flow on two fresh copies of one pipeline."""
    slug = f"{name.replace(' ', '-')}-{'cached' if cached else 'cold'}"
    by_dvc, by_flow = make(tmp / f"{slug}-dvc", env), make(tmp / f"{slug}-flow", env)
    flow = ["wavegen", "run", "--repo"]
    if cached:  # bring both up to date first; then time the no-op runs
        _run(["dvc", "repro"], by_dvc, env)
        _run([*flow, str(by_flow)], REPO_ROOT, env)
    dvc_s = _run(["dvc", "repro"], by_dvc, env)
    flow_s = _run([*flow, str(by_flow)], REPO_ROOT, env)
    return {
        "name": f"{name} ({stages} stage{'s' * (stages > 1)}, {'cached' if cached else 'cold'})",
        "dvc_repro_s": round(dvc_s, 2),
        "flow_s": round(flow_s, 2),
        "flow_over_dvc": round(flow_s / dvc_s, 2),
        "overhead_per_stage_s": round((flow_s - dvc_s) / stages, 2),
    }


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with local_server(tmp / "prefect-home") as server_env:
            env = {**server_env, "PYTHONPATH": str(REPO_ROOT)}
            rows = [
                _compare("trivial stages", _trivial_repo, TRIVIAL_STAGES, tmp, env, cached=True),
                _compare("trivial stages", _trivial_repo, TRIVIAL_STAGES, tmp, env, cached=False),
            ]
            concurrent = _compare("two 1-thread CPU stages", _busy_repo, 2, tmp, env, cached=False)
            concurrent["speedup"] = round(concurrent["dvc_repro_s"] / concurrent["flow_s"], 2)
            rows.append(concurrent)
            rows += whole_dag(tmp, env)
    return rows


def cold_dag() -> list[dict[str, Any]]:
    """The whole DAG, cold, under both runners: the row a change to scheduling moves."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with local_server(tmp / "prefect-home") as server_env:
            return whole_dag(tmp, {**server_env, "PYTHONPATH": str(REPO_ROOT)}, cold_only=True)


if __name__ == "__main__":
    # `python -m benchmarks.bench_flow cold-dag`: that row alone (about 15 minutes).
    for row in cold_dag() if sys.argv[1:] == ["cold-dag"] else run():
        print(row, flush=True)
    sys.exit(0)
