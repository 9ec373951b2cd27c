"""Orchestration: the Prefect flow against `dvc repro` on the same pipelines.

* overhead per stage: wall time of `wavegen run` (the flow, against a running local
  Prefect server) minus `dvc repro`, over the number of stages, on the fully cached
  default pipeline and on a pipeline of trivial stages;
* concurrency: two independent CPU-bound stages, each on one thread, run one after
  another by `dvc repro` and at the same time by the flow.

Each measurement uses its own fresh git repo in a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.server import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]
TRIVIAL_STAGES = 8
# Pure-Python work (one thread by construction), about 15 s per stage on this machine,
# long enough that the flow's fixed start-up (importing Prefect, about 3 s) is amortised.
BUSY_ITERATIONS = 160_000_000


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


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
                _compare("default pipeline", _default_repo, 1, tmp, env, cached=True),
                _compare("trivial stages", _trivial_repo, TRIVIAL_STAGES, tmp, env, cached=True),
                _compare("trivial stages", _trivial_repo, TRIVIAL_STAGES, tmp, env, cached=False),
            ]
            concurrent = _compare("two 1-thread CPU stages", _busy_repo, 2, tmp, env, cached=False)
            concurrent["speedup"] = round(concurrent["dvc_repro_s"] / concurrent["flow_s"], 2)
            # The same ratio without the start-up both runs pay once whatever the graph:
            # the cached single-stage runs above are exactly that fixed cost.
            fixed_dvc, fixed_flow = rows[0]["dvc_repro_s"], rows[0]["flow_s"]
            concurrent["speedup_after_startup"] = round(
                (concurrent["dvc_repro_s"] - fixed_dvc) / (concurrent["flow_s"] - fixed_flow), 2
            )
            rows.append(concurrent)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
    sys.exit(0)
