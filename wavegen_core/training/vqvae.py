"""Training one tier of the VQ-VAE hierarchy with the shared loop, and loading it back.

A tier trains on random excerpts of the level below (audio for tier 1, tier k - 1's
codes as `encode` wrote them otherwise): ``segment`` steps of it, so ``segment / hop``
codes per excerpt. The quantiser's k-means start and dead-code restarts draw from the
global generator, which the loop saves with every checkpoint, so a resumed run equals
an uninterrupted one. Validation is a fixed draw of excerpts of the validation split:
the tier's loss terms and its codebook usage and perplexity there.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from wavegen_core.config import QuantiserConfig, TierConfig, VQVAEConfig
from wavegen_core.data.codes import Level, LevelPiece, excerpt_batch
from wavegen_core.models.vqvae import Below, VQVAETier
from wavegen_core.training.checkpoint import load_checkpoint
from wavegen_core.training.loop import TrainResult, fit
from wavegen_core.training.seeding import seed_everything

# Validation excerpts: a fixed draw, the same at every evaluation and in every run.
VALIDATION_EXCERPTS = 8
VALIDATION_STEP = 0


def below_of(level: Level) -> Below:
    """What a tier on ``level`` encodes: audio, or codes with their vectors."""
    return Below(None if level.codebook is None else torch.from_numpy(level.codebook))


def tier_checkpoint_config(
    number: int,
    tier: TierConfig,
    quantiser: QuantiserConfig,
    below: Below,
    *,
    sample_rate: int,
    seed: int,
    input_digest: str,
) -> dict[str, Any]:
    """What a tier's checkpoint carries to rebuild it, and to tell runs apart: a
    checkpoint trained on other input (``input_digest``) is not resumed from."""
    return {
        "tier": number,
        "model": tier.model_dump(mode="json", exclude={"train"}),
        "quantiser": quantiser.model_dump(mode="json"),
        "below": None if below.codebook is None else list(below.codebook.shape),
        "sample_rate": sample_rate,
        "seed": seed,
        "input_digest": input_digest,
    }


def load_tier(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> VQVAETier:
    """A trained tier from its checkpoint alone, in eval mode."""
    checkpoint = load_checkpoint(path, map_location=device)
    saved = checkpoint["config"]
    shape = saved["below"]
    below = Below(None if shape is None else torch.zeros(*shape))
    model = VQVAETier(
        int(saved["tier"]),
        TierConfig.model_validate(saved["model"]),
        QuantiserConfig.model_validate(saved["quantiser"]),
        below,
        int(saved["sample_rate"]),
    )
    model.load_state_dict(checkpoint["state"])
    return model.to(device).eval()


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
) -> TrainResult:
    """Train (or resume training) tier ``number`` on ``level``; see :func:`fit`."""
    seed_everything(seed + number)
    tier = config.tier(number)
    below = below_of(level)
    model = VQVAETier(number, tier, config.quantiser, below, sample_rate)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=tier.train.learning_rate, weight_decay=tier.train.weight_decay
    )
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
        optimizer,
        loss_fn=_loss,
        batch_for_step=lambda step: excerpt_batch(
            train, seed=seed, step=step, batch_size=tier.train.batch_size, segment=tier.segment
        ),
        loop=tier.train,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=tier_checkpoint_config(
            number,
            tier,
            config.quantiser,
            below,
            sample_rate=sample_rate,
            seed=seed,
            input_digest=input_digest,
        ),
        device=device,
        evaluate=evaluate,
    )
