"""Training one tier of the VQ-VAE hierarchy with the shared loop.

A tier trains on random excerpts of the level below (audio for tier 1, tier k - 1's
codes as `encode` wrote them otherwise): ``segment`` steps of it, so ``segment / hop``
codes per excerpt. The quantiser's k-means start and dead-code restarts draw from the
global generator, which the loop saves with every checkpoint, so a resumed run equals
an uninterrupted one. Validation is a fixed draw of excerpts of the validation split:
the tier's loss terms and its codebook usage and perplexity there.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from wavegen_core.data.codes import Level, LevelPiece, excerpt_batch
from wavegen_core.models.hierarchy.vqvae import SPEC, Below
from wavegen_core.params import VQVAEConfig
from wavegen_core.seeding import seed_everything
from wavegen_core.training.loop import TrainResult, fit

# Validation excerpts: a fixed draw, the same at every evaluation and in every run.
VALIDATION_EXCERPTS = 8
VALIDATION_STEP = 0


def below_of(level: Level) -> Below:
    """What a tier on ``level`` encodes: audio, or codes with their vectors."""
    return Below(None if level.codebook is None else torch.from_numpy(level.codebook))


def _loss(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict]:
    loss, extras = model.loss(batch)  # type: ignore[operator]
    return loss, extras


def train_tier(
    number: int,
    config: VQVAEConfig,
    level: Level,
    train: list[LevelPiece],
    validation: list[LevelPiece],
    *,
    sample_rate: int,
    seed: int,
    device: torch.device,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
    input_digest: str,
    eval_prefix: str = "eval",
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train (or resume training) tier ``number`` on ``level``; see :func:`fit`."""
    seed_everything(seed + number)
    tier = config.tier(number)
    below = below_of(level)
    saved = SPEC.checkpoint_config(
        number,
        tier,
        config.quantiser,
        below,
        sample_rate=sample_rate,
        seed=seed,
        input_digest=input_digest,
    )
    model = SPEC.build(saved, below)
    held_out = excerpt_batch(
        validation,
        seed=seed,
        step=VALIDATION_STEP,
        batch_size=VALIDATION_EXCERPTS,
        segment=tier.segment,
    )

    def evaluate(model: nn.Module) -> dict[str, float]:
        loss, extras = model.loss(held_out.to(device))  # type: ignore[operator]
        return {"loss": float(loss), **{name: float(value) for name, value in extras.items()}}

    return fit(
        model,
        SPEC.optimisers(model, tier.train, saved),
        loss_fn=_loss,
        batch_for_step=lambda step: excerpt_batch(
            train, seed=seed, step=step, batch_size=tier.train.batch_size, segment=tier.segment
        ),
        loop=tier.train,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=saved,
        device=device,
        evaluate=evaluate,
        eval_prefix=eval_prefix,
        on_step=on_step,
    )
