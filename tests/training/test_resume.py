"""A run killed with SIGKILL and rerun ends with the weights of a run never killed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import torch

from tests.training._train_script import CHECKPOINT, METRICS
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.training.metrics import read_curves

STEPS, KILL_AT, LAST_CHECKPOINT = 30, 13, 10


def _start(workdir: Path, repo_root: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tests.training._train_script",
        str(workdir),
        "--steps",
        str(STEPS),
        *extra,
    ]
    return subprocess.Popen(
        command, cwd=repo_root, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_killed_run_resumes_to_identical_weights(tmp_path, repo_root, venv_env) -> None:
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    # The uninterrupted reference runs beside the killed run, to keep the test short.
    reference = _start(whole, repo_root, venv_env)

    code, stderr = _finish(_start(killed, repo_root, venv_env, "--kill-at", str(KILL_AT)))
    assert code == -signal.SIGKILL, stderr
    assert load_checkpoint(killed / CHECKPOINT)["step"] == LAST_CHECKPOINT
    # The killed run logged steps its checkpoint never saw: the case truncation is for.
    assert read_curves(killed / METRICS)["train/loss"][0][-1] == KILL_AT

    code, stderr = _finish(_start(killed, repo_root, venv_env))
    assert code == 0, stderr
    assert f"resuming from step {LAST_CHECKPOINT}" in stderr

    code, stderr = _finish(reference)
    assert code == 0, stderr
    assert "resuming" not in stderr

    resumed = load_checkpoint(killed / CHECKPOINT)
    uninterrupted = load_checkpoint(whole / CHECKPOINT)
    assert resumed["step"] == uninterrupted["step"] == STEPS
    for name, weights in uninterrupted["state"].items():
        assert torch.equal(resumed["state"][name], weights), name
    for index, state in uninterrupted["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][key], value), (index, key)
    assert resumed["metrics"] == uninterrupted["metrics"]
    # Identical state, identical bytes: DVC gives the resumed run the same hash.
    assert (killed / CHECKPOINT).read_bytes() == (whole / CHECKPOINT).read_bytes()
    summary = METRICS + "/metrics.json"
    assert (killed / summary).read_bytes() == (whole / summary).read_bytes()

    curves = read_curves(killed / METRICS)
    for name, (steps, _) in curves.items():
        assert steps == sorted(set(steps)), f"{name} repeats or reorders steps: {steps}"
    assert curves["train/loss"][0] == list(range(1, STEPS + 1))
    assert curves["eval/loss"][0] == [4, 8, 12, 16, 20, 24, 28, 30]
    # Every logged value, not only the final weights, matches the uninterrupted run.
    assert curves == read_curves(whole / METRICS)
