"""A deployment from prefect.yaml, served by a real `prefect worker` on a process pool."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import run
from tests.pipelines.conftest import wait_until
from tests.pipelines.toy_repo import make_toy_repo

pytestmark = pytest.mark.slow


def test_worker_picks_up_a_deployment_run_and_completes_it(
    tmp_path, repo_root, prefect_server
) -> None:
    # The worker asks for scheduled runs every second (10 s by default): the test waits
    # on it, not on the work.
    env = {**prefect_server, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    toy = make_toy_repo(tmp_path / "toy", seconds=0.2)
    run(["prefect", "work-pool", "create", "gpu", "--type", "process"], repo_root, env)
    run(["prefect", "--no-prompt", "deploy", "--name", "gpu"], repo_root, env)
    with open(tmp_path / "worker.log", "w") as worker_log:
        worker = subprocess.Popen(
            ["prefect", "worker", "start", "--pool", "gpu", "--limit", "1"],
            cwd=repo_root,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        try:
            started = run(
                [
                    "prefect",
                    "deployment",
                    "run",
                    "wavegen/gpu",
                    "--param",
                    f"repo={toy}",
                    "--param",
                    "share=false",  # the toy project has no DVC remote
                    "--param",
                    "retry_backoff=0.5",
                    "--job-variable",
                    'env={"CUDA_VISIBLE_DEVICES": "3"}',  # a per-run override
                    "--watch",
                    "--watch-timeout",
                    "240",
                ],
                repo_root,
                env,
            )
            assert "Completed" in started.stdout, started.stdout
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker busy shutting down its runs
                worker.kill()
                worker.wait()
    assert json.loads((toy / "out/c.json").read_text())["stage"] == "c"
    # The GPU stage saw the device chosen for this run, not the deployment's default "0".
    assert json.loads((toy / "out/b.json").read_text())["cuda_visible_devices"] == "3"
    wait_until(lambda: "Completed" in (tmp_path / "worker.log").read_text(), 10, "worker log")
