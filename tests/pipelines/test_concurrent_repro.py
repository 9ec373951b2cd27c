"""Two people in one checkout: `dvc repro` of two targets started at once.

Independent targets both finish and both land in dvc.lock. A target whose chain holds
a stage the other run is running is refused at once by `dvc repro`, naming the process
that holds it; the other run finishes untouched, and the refused one, run again, finds
its work done. The flow's runner waits instead, saying whom it waits for. Neither
leaves a corrupt output.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pipelines.dvc_runner import StageBusy, dvc, outcome_of
from tests.pipelines.toy_repo import make_toy_repo


def _start(repo: Path, target: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["dvc", "repro", target],
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _outputs_whole(repo: Path, names: str) -> None:
    for name in names:
        record = json.loads((repo / "out" / f"{name}.json").read_text())
        assert record["stage"] == name


def _wait_until_locked(repo: Path, output: str, timeout: float = 60.0) -> None:
    """Until a running `dvc repro` holds ``output`` (DVC's own lock file says so)."""
    lock = repo / ".dvc/tmp/rwlock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.is_file() and output in lock.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"no dvc process took {output} within {timeout:g} s")


def _status(repo: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        ["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_two_independent_targets_started_at_once_both_finish(tmp_path, venv_env) -> None:
    repo = make_toy_repo(tmp_path / "toy", seconds=2.0)
    first = _start(repo, "a", venv_env)
    time.sleep(0.5)
    second = _start(repo, "b", venv_env)
    for process in (first, second):
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
    _outputs_whole(repo, "ab")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {"a", "b"} <= set(lock)  # neither run's lock update lost the other's
    assert set(_status(repo, venv_env)) == {"c"}  # only the stage nobody ran


def test_a_target_whose_stage_is_running_is_refused_with_who_holds_it(tmp_path, venv_env) -> None:
    repo = make_toy_repo(tmp_path / "toy", seconds=2.0)
    whole = _start(repo, "c", venv_env)  # runs a, then b, then c
    _wait_until_locked(repo, "out/a.json")  # a is running now
    refused = subprocess.run(
        ["dvc", "repro", "a"], cwd=repo, env=venv_env, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "is busy" in refused.stderr and f"PID {whole.pid}" in refused.stderr, refused.stderr
    out, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, out
    _outputs_whole(repo, "abc")
    assert _status(repo, venv_env) == {}
    again = subprocess.run(
        ["dvc", "repro", "a"], cwd=repo, env=venv_env, capture_output=True, text=True, check=True
    )
    assert "Running stage" not in again.stdout


def test_the_flow_runner_waits_for_a_busy_stage_and_says_for_whom(tmp_path, venv_env) -> None:
    repo = make_toy_repo(tmp_path / "toy", seconds=2.0)
    whole = _start(repo, "c", venv_env)
    _wait_until_locked(repo, "out/a.json")
    single_a = ["--wait-for-lock", "repro", "--single-item", "a"]
    with pytest.raises(StageBusy, match=f"out/a.json is in use .*PID {whole.pid}"):
        dvc(single_a, repo)
    messages: list[str] = []
    output = dvc(single_a, repo, messages.append, wait_while_busy=True, poll_seconds=0.2)
    _outputs_whole(repo, "a")  # it returned once the other run had finished a
    out, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, out
    waiting = [m for m in messages if m.startswith("waiting:")]
    assert len(waiting) == 1 and f"PID {whole.pid}" in waiting[0], messages
    assert any(m.startswith("no longer busy") for m in messages), messages
    assert outcome_of("a", output, 0.0).status == "skipped"  # the other run did the work
    _outputs_whole(repo, "abc")
