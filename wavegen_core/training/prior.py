"""Training and scoring the prior over the top tier's codes with the shared loop.

Each piece's top-tier codes make one token stream, ``[START, *codes]``. A training
example is a random window of ``context + 1`` tokens of one piece, the piece drawn
with probability proportional to its number of codes; windows of short pieces are
padded with :data:`~wavegen_core.models.hierarchy.prior.IGNORE`. A step's batch depends only on
the seed and the step (resume is exact). Validation scores every code of every
held-out piece, in consecutive windows: negative log-likelihood in nats per code,
``log(codebook_size)`` for a model that has learnt nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from wavegen_core.models.hierarchy.prior import IGNORE, SPEC, CodePrior
from wavegen_core.params import PriorConfig
from wavegen_core.seeding import seed_everything, step_generator
from wavegen_core.training.loop import TrainResult, fit, held_out_or_train

EVAL_BATCH = 16


def _window(codes: np.ndarray, start: int, first: int, length: int) -> list[int]:
    """Tokens ``first .. first + length - 1`` of the stream ``[start, *codes]``, padded.

    Only the window is read from ``codes``: pieces can be long.
    """
    if first == 0:
        tokens = [start, *codes[: length - 1].tolist()]
    else:
        tokens = codes[first - 1 : first - 1 + length].tolist()
    return tokens + [IGNORE] * (length - len(tokens))


def prior_batch(
    sequences: Sequence[np.ndarray],
    *,
    seed: int,
    step: int,
    batch_size: int,
    context: int,
    start: int,
) -> torch.Tensor:
    """``(batch_size, context + 1)`` token windows for ``step``; short pieces are padded.

    ``sequences`` holds one piece's top-tier codes each (1-D integer arrays, which may be
    memory-mapped: only the windows drawn are read).
    """
    if not sequences:
        raise ValueError("no code sequences to draw from")
    generator = step_generator(seed, step)
    weights = torch.tensor([max(len(codes), 1) for codes in sequences], dtype=torch.float)
    chosen = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
    rows = []
    for index in chosen.tolist():
        codes = np.asarray(sequences[index]).reshape(-1)  # a view: only the window is read
        last_start = max(len(codes) + 1 - (context + 1), 0)
        first = int(torch.randint(0, last_start + 1, (1,), generator=generator))
        rows.append(_window(codes, start, first, context + 1))
    return torch.tensor(rows, dtype=torch.long)


def evaluation_windows(
    sequences: Sequence[np.ndarray], *, context: int, start: int
) -> torch.Tensor:
    """Every code of every piece, in consecutive ``context + 1`` windows overlapping by one.

    Each window's first token is the previous window's last (or START), so every code
    is predicted exactly once, from up to ``context`` tokens of its past.
    """
    rows = []
    for piece in sequences:
        codes = np.asarray(piece, dtype=np.int64).reshape(-1)
        for first in range(0, len(codes), context):
            rows.append(_window(codes, start, first, context + 1))
    return torch.tensor(rows, dtype=torch.long).reshape(-1, context + 1)


@torch.no_grad()
def evaluate_nll(
    model: CodePrior,
    sequences: Sequence[np.ndarray],
    *,
    context: int,
    device: torch.device | str,
    batch_size: int = EVAL_BATCH,
) -> float:
    """Mean negative log-likelihood in nats per code over every code of ``sequences``.

    Runs in eval mode (the model's mode is restored after), in windows of ``context``
    predictions (see :func:`evaluation_windows`).
    """
    if context > model.context:
        raise ValueError(f"context={context} exceeds the model's context of {model.context}")
    windows = evaluation_windows(sequences, context=context, start=model.start)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for window in windows.split(batch_size):
            window = window.to(device)
            codes = int((window[:, 1:] >= 0).sum())
            nll, _ = model.loss(window)
            total += float(nll) * codes
            count += codes
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no codes to score")
    return total / count


def _loss(model: nn.Module, window: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return cast(CodePrior, model).loss(window)


def train_prior(
    config: PriorConfig,
    codebook_size: int,
    train: list[np.ndarray],
    validation: list[np.ndarray],
    *,
    seed: int,
    device: torch.device,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
    input_digest: str | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train (or resume training) the prior over ``codebook_size`` codes; see :func:`fit`.

    ``train`` and ``validation`` hold one piece's top-tier codes each; with no
    validation pieces, the training pieces are scored instead. ``input_digest``
    (recorded in the checkpoint) identifies the codes, so that a checkpoint trained on
    other codes is not resumed from.
    """
    if not train:
        raise ValueError("no training code sequences")
    seed_everything(seed)
    loop = config.train
    saved = SPEC.checkpoint_config(config.model, loop, codebook_size, seed, input_digest)
    model = SPEC.build(saved)
    context = config.model.context
    held_out, eval_prefix = held_out_or_train(validation, train, "train_prior")

    def evaluate(model: nn.Module) -> dict[str, float]:
        nll = evaluate_nll(cast(CodePrior, model), held_out, context=context, device=device)
        return {"nll": nll}

    return fit(
        model,
        SPEC.optimisers(model, loop, saved),
        loss_fn=_loss,
        batch_for_step=lambda step: prior_batch(
            train,
            seed=seed,
            step=step,
            batch_size=loop.batch_size,
            context=context,
            start=model.start,
        ),
        loop=loop,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=saved,
        device=device,
        evaluate=evaluate,
        eval_prefix=eval_prefix,
        on_step=on_step,
    )
