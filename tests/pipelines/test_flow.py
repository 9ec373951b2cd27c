"""The Prefect flow against a real Prefect API and the real `dvc`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from pipelines.dvc_runner import StageFailed
from pipelines.flow import pipeline
from tests.conftest import run
from tests.pipelines.toy_repo import make_toy_repo
from wavegen_core.threads import machine_cores

pytestmark = pytest.mark.slow


def _stamps(repo, name):
    return json.loads((repo / "out" / f"{name}.json").read_text())


def test_independent_stages_overlap_and_a_second_run_skips_all(tmp_path, prefect_api) -> None:
    repo = make_toy_repo(tmp_path / "toy", seconds=4.0)
    (repo / "params.yaml").write_text("sleep:\n  a: 4.0\n  b: 9.0\n")  # b outlasts a
    outcomes = pipeline(repo=str(repo), jobs=2)
    assert {o.stage: o.status for o in outcomes} == {"a": "ran", "b": "ran", "c": "ran"}
    a, b, c = (_stamps(repo, n) for n in "abc")
    assert a["start"] < b["end"] and b["start"] < a["end"], "a and b did not run at once"
    assert c["start"] >= max(a["end"], b["end"])
    assert c["inputs"]["out/a.json"] == a and c["inputs"]["out/b.json"] == b  # both intact
    # Side by side, a and b shared the cores; b, once a had ended, and c, alone, had
    # them all.
    cores, half = machine_cores(), str(max(1, machine_cores() // 2))
    assert (a["threads"], b["threads"], c["threads"]) == (half, half, str(cores))
    assert (a["threads_at_end"], b["threads_at_end"]) == (half, str(cores))
    # OpenMP waits passively beside another stage (where there are cores to share).
    shared = "PASSIVE" if cores > 1 else None
    assert (a["wait_policy"], b["wait_policy"], c["wait_policy"]) == (shared, shared, None)

    again = pipeline(repo=str(repo))
    assert {o.status for o in again} == {"skipped"}
    assert _stamps(repo, "c") == c


def test_the_evaluation_page_is_linked_as_an_artifact(tmp_path, prefect_api) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    repo = make_toy_repo(tmp_path / "toy", seconds=0.1, with_report_stage=True)
    pipeline(repo=str(repo), targets=["evaluate"])
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["wavegen-report"]))
        )
    page = (repo / "report/index.html").resolve().as_uri()
    assert any(page in str(artifact.data) for artifact in found), found


def test_own_error_fails_at_once_without_retries(tmp_path, prefect_api) -> None:
    repo = make_toy_repo(tmp_path / "toy")
    dvc_yaml = repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace("python work.py a", "python -c 'import sys; sys.exit(2)' a")
    )
    start = time.perf_counter()
    with pytest.raises(StageFailed, match="invalid params"):
        pipeline(repo=str(repo), targets=["a"], retry_backoff=30)
    assert time.perf_counter() - start < 25  # no 30 s back-off was waited


def test_killed_stage_is_retried_and_leaves_no_half_output(tmp_path, prefect_api) -> None:
    repo = make_toy_repo(tmp_path / "toy", with_killed_stage=True)
    outcomes = pipeline(repo=str(repo), targets=["k"], retry_backoff=0.5)
    assert (repo / "killed-once").exists()  # the first attempt was killed
    assert [o.status for o in outcomes] == ["ran"]
    assert _stamps(repo, "k")["stage"] == "k"  # complete JSON, not the killed half


def test_a_kill_that_cuts_dvcs_rwlock_is_repaired_before_the_retry(tmp_path, prefect_api) -> None:
    repo = make_toy_repo(tmp_path / "toy", with_killed_stage=True)
    outcomes = pipeline(repo=str(repo), targets=["r"], retry_backoff=0.5)
    assert (repo / "killed-once").exists()  # the first attempt left the rwlock cut
    assert [o.status for o in outcomes] == ["ran"]  # without the repair: "Unable to read"
    assert _stamps(repo, "r")["stage"] == "r"


def test_overrides_run_as_a_dvc_experiment(tmp_path, prefect_api, venv_env) -> None:
    repo = make_toy_repo(tmp_path / "toy", seconds=0.1)
    pipeline(repo=str(repo), targets=["a"], overrides=["sleep.a=0.2"], experiment="quick-a")
    assert yaml.safe_load((repo / "params.yaml").read_text())["sleep"]["a"] == 0.2
    shown = run(["dvc", "exp", "show", "--json"], repo, venv_env).stdout
    assert "quick-a" in shown


def test_rerun_after_the_whole_worker_is_killed_mid_stage(tmp_path, prefect_api, venv_env):
    """A killed worker takes the flow and its stage with it; running the flow again
    (what a retried deployment run does) finishes, and nothing half-written survives."""
    import os
    import signal
    import subprocess
    import sys

    from tests.pipelines.conftest import wait_until

    repo = make_toy_repo(tmp_path / "toy", seconds=30.0)
    script = f"from pipelines.flow import pipeline; pipeline(repo={str(repo)!r}, targets=['a'])"
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # the test's server
    worker = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _stage_pids("work.py a"), 120, "stage a")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the flow and dvc at once
        worker.wait()
    for pid in _stage_pids("work.py a"):  # the stage runs in a session of its own
        os.kill(pid, signal.SIGKILL)
    assert not (repo / "out/a.json").exists()

    (repo / "params.yaml").write_text("sleep:\n  a: 0.2\n  b: 0.2\n")
    outcomes = pipeline(repo=str(repo), targets=["a"])
    assert [o.status for o in outcomes] == ["ran"]
    assert _stamps(repo, "a")["stage"] == "a"


def _stage_pids(command: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if command in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="ignore"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids
