"""A tiny regression MLP with dropout, trained by ``fit``; as a script it can kill itself.

    python -m tests.training._train_script WORKDIR [--steps 30] [--kill-at 13]

The resume test runs it twice in one directory (killed, then rerun) and once in
another (uninterrupted) and compares the results. The parts are importable so that
in-process tests train the same toy problem.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.progress import setup_logging
from wavegen_core.seeding import seed_everything, step_generator
from wavegen_core.training.loop import TrainResult, fit

SEED = 7
FEATURES = 4
EXAMPLES = 64
CHECKPOINT = "model.pt"
METRICS = "metrics"

Batch = tuple[torch.Tensor, torch.Tensor]


def make_model(dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))


def regression_data(seed: int) -> tuple[Batch, Batch]:
    """Train and held-out sets of ``y = x . w + 0.01 * noise``, from their own generator."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(2 * EXAMPLES, FEATURES, generator=generator)
    weights = torch.randn(FEATURES, 1, generator=generator)
    targets = inputs @ weights + 0.01 * torch.randn(2 * EXAMPLES, 1, generator=generator)
    return (inputs[:EXAMPLES], targets[:EXAMPLES]), (inputs[EXAMPLES:], targets[EXAMPLES:])


def batches(data: Batch, batch_size: int, seed: int) -> Callable[[int], Batch]:
    inputs, targets = data

    def batch_for_step(step: int) -> Batch:
        rows = torch.randint(0, EXAMPLES, (batch_size,), generator=step_generator(seed, step))
        return inputs[rows], targets[rows]

    return batch_for_step


def mse(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    inputs, targets = batch
    predictions = model(inputs)
    return functional.mse_loss(predictions, targets), {
        "mae": functional.l1_loss(predictions, targets).detach()
    }


def evaluator(data: Batch) -> Callable[[nn.Module], dict[str, float]]:
    """Held-out MSE; it also draws from every global generator, as sampling code would."""
    inputs, targets = data

    def evaluate(model: nn.Module) -> dict[str, float]:
        random.random()
        np.random.rand()
        torch.rand(3)
        return {"loss": functional.mse_loss(model(inputs), targets).item()}

    return evaluate


def loop_config(steps: int, **overrides: Any) -> TrainLoopConfig:
    settings: dict[str, Any] = {
        "steps": steps,
        "batch_size": 8,
        "learning_rate": 3e-2,
        "grad_clip": 1.0,
        "checkpoint_every": 5,
        "log_every": 1,
        "eval_every": 4,
        "device": "cpu",
    }
    return TrainLoopConfig(**{**settings, **overrides})


def train(
    workdir: Path,
    loop: TrainLoopConfig,
    *,
    dropout: float = 0.2,
    loss_fn: Callable[[nn.Module, Batch], tuple[torch.Tensor, Any]] = mse,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    seed_everything(SEED)
    train_set, held_out = regression_data(SEED)
    model = make_model(dropout)
    optimiser = torch.optim.Adam(model.parameters(), lr=loop.learning_rate)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=20, gamma=0.5)
    return fit(
        model,
        optimiser,
        loss_fn=loss_fn,
        batch_for_step=batches(train_set, loop.batch_size, SEED),
        loop=loop,
        checkpoint_path=workdir / CHECKPOINT,
        metrics_dir=workdir / METRICS,
        config={"model": {"features": FEATURES, "dropout": dropout}, "loop": loop.model_dump()},
        device=torch.device("cpu"),
        evaluate=evaluator(held_out),
        scheduler=scheduler,
        on_step=on_step,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--kill-at", type=int, default=None)
    args = parser.parse_args()
    setup_logging()

    def kill_at(step: int) -> None:
        if step == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    train(args.workdir, loop_config(args.steps), on_step=kill_at)


if __name__ == "__main__":
    main()
