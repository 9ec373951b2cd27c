"""A run killed with SIGKILL and rerun ends with the weights of a run never killed; and
``resume``, the part of it that restores a checkpoint, on its own."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tests.training._train_script import CHECKPOINT, METRICS
from wavegen_core import parallel
from wavegen_core.checkpoint import load_checkpoint, save_checkpoint
from wavegen_core.seeding import capture_rng
from wavegen_core.training.metrics import read_curves
from wavegen_core.training.resume import resume, start_random_streams

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


CONFIG = {"model": {"width": 3}, "seed": 0}


def _trained(steps: int) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """A linear model after ``steps`` Adam steps under a halving schedule."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=2, gamma=0.5)
    for _ in range(steps):
        optimiser.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimiser.step()
        schedule.step()
    return model, optimiser, schedule


def _stream(seed: int, draws: int = 2) -> torch.Tensor:
    """The first ``draws`` numbers of torch's global stream seeded with ``seed``."""
    torch.manual_seed(seed)
    return torch.rand(draws)


def _resume_into(path: Path, live: tuple[nn.Module, torch.optim.Optimizer, Any], **given: Any):
    """``resume`` into ``live`` (a model, its optimiser and its schedule), for a run of
    ``CONFIG`` and 10 steps on the CPU unless ``given`` says otherwise."""
    model, optimiser, schedule = live
    arguments: dict[str, Any] = {
        "config": CONFIG,
        "steps": 10,
        "scaler": None,
        "device": torch.device("cpu"),
        **given,
    }
    return resume(path, model=model, optimisers=optimiser, schedulers=schedule, **arguments)


def test_resume_restores_weights_optimiser_schedule_and_step_and_leaves_the_generators(
    tmp_path,
) -> None:
    model, optimiser, schedule = _trained(3)
    path = tmp_path / CHECKPOINT
    metrics = {"train/loss": 0.5}
    save_checkpoint(
        path, model, optimiser, step=3, config=CONFIG, metrics=metrics, scheduler=schedule
    )
    drawn_next = torch.rand(4)  # what the saved run draws at its next step

    live = _trained(0)
    torch.manual_seed(99)
    resumed = _resume_into(path, live)

    assert resumed is not None
    assert resumed.step == 3 and resumed.metrics == metrics
    for name, weights in model.state_dict().items():
        assert torch.equal(live[0].state_dict()[name], weights), name
    saved_state, live_state = optimiser.state_dict()["state"], live[1].state_dict()["state"]
    for index, state in saved_state.items():
        for key, value in state.items():
            assert torch.equal(live_state[index][key], value), (index, key)
    assert live[2].last_epoch == 3 and live[1].param_groups[0]["lr"] == 0.05
    # The generators are the caller's to restore, last: resume neither draws nor sets them.
    assert torch.equal(torch.rand(4), _stream(99, 4))
    start_random_streams(resumed, parallel.ALONE)
    assert torch.equal(torch.rand(4), drawn_next)


def test_resume_refuses_another_runs_checkpoint_and_restores_nothing(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="wavegen")
    model, optimiser, schedule = _trained(3)
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, model, optimiser, step=3, config=CONFIG, metrics={}, scheduler=schedule)
    live = _trained(0)
    weights = {name: tensor.clone() for name, tensor in live[0].state_dict().items()}

    assert _resume_into(path, live, config={**CONFIG, "model": {"width": 5}}) is None
    assert "other values of model.width" in caplog.text
    assert _resume_into(path, live, steps=2) is None
    assert "its step 3 is past loop.steps=2" in caplog.text
    assert _resume_into(tmp_path / "none.pt", live) is None

    assert all(torch.equal(live[0].state_dict()[name], w) for name, w in weights.items())
    assert live[1].state_dict()["state"] == {} and live[2].last_epoch == 0


class _Scaler:
    """What a checkpoint saves of fp16's gradient scaler (a real one needs CUDA)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale = state["scale"]


def test_resume_restores_the_gradient_scaler_of_an_fp16_run(tmp_path) -> None:
    model, optimiser, schedule = _trained(1)
    path = tmp_path / CHECKPOINT
    save_checkpoint(
        path,
        model,
        optimiser,
        step=1,
        config=CONFIG,
        metrics={},
        scheduler=schedule,
        scaler=_Scaler(512.0),  # type: ignore[arg-type]
    )
    scaler = _Scaler(65536.0)
    assert _resume_into(path, _trained(0), scaler=scaler) is not None
    assert scaler.scale == 512.0


def test_each_rank_resumes_its_own_generators_or_rank_0s_after_a_change_of_processes(
    tmp_path,
) -> None:
    model, optimiser, schedule = _trained(1)
    by_rank = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        by_rank.append(capture_rng())
    torch.manual_seed(3)  # the checkpoint's own "rng": rank 0's as the run saw it
    save_checkpoint(
        tmp_path / CHECKPOINT,
        model,
        optimiser,
        step=1,
        config=CONFIG,
        metrics={},
        scheduler=schedule,
        rng_by_rank=by_rank,
    )
    for world, seed in (
        (parallel.World(rank=1, size=2), 2),  # the same processes: its own
        (parallel.World(rank=1, size=3), 3),  # three now, two then: rank 0's
    ):
        resumed = _resume_into(tmp_path / CHECKPOINT, _trained(0), world=world)
        start_random_streams(resumed, world)
        assert torch.equal(torch.rand(2), _stream(seed)), world


def test_a_fresh_run_keeps_the_seeded_stream_on_rank_0_and_gives_other_ranks_their_own() -> None:
    for world in (parallel.ALONE, parallel.World(rank=0, size=2)):
        torch.manual_seed(5)
        start_random_streams(None, world)
        assert torch.equal(torch.rand(2), _stream(5)), world
    torch.manual_seed(5)
    start_random_streams(None, parallel.World(rank=1, size=2))
    assert not torch.equal(torch.rand(2), _stream(5))
