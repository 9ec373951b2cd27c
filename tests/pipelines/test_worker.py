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
    env = prefect_server
    toy = make_toy_repo(tmp_path / "toy", seconds=0.2)
    run(["prefect", "work-pool", "create", "cpu", "--type", "process"], repo_root, env)
    run(["prefect", "--no-prompt", "deploy", "--name", "cpu"], repo_root, env)
    with open(tmp_path / "worker.log", "w") as worker_log:
        worker = subprocess.Popen(
            ["prefect", "worker", "start", "--pool", "cpu", "--limit", "1"],
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
                    "wavegen/cpu",
                    "--param",
                    f"repo={toy}",
                    "--param",
                    "retry_backoff=0.5",
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
            worker.wait(timeout=30)
    assert json.loads((toy / "out/c.json").read_text())["stage"] == "c"
    wait_until(lambda: "Completed" in (tmp_path / "worker.log").read_text(), 10, "worker log")
