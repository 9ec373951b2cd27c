"""Training a vocoder family with the shared loop.

Batches are random frame-aligned excerpts of the train split (one draw per step,
seeded by the step). Validation runs on a fixed set of excerpts of the validation
split: the family's own loss terms (teacher-forced for the WaveNet) and, for every
family alike, the log-mel L1 between audio the model generates from the excerpts'
rolls and the true audio, the figure that compares families on one scale.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from wavegen_core.audio.spectral import evaluation_mel, mel_l1
from wavegen_core.config import VocoderConfig
from wavegen_core.data.pairs import RollPiece, segment_batch
from wavegen_core.models.vocoders import build_vocoder, checkpoint_config, family_config
from wavegen_core.training.loop import TrainResult, fit
from wavegen_core.training.seeding import seed_everything

# Validation excerpts: a fixed draw, the same at every evaluation and in every run.
VALIDATION_SEGMENTS = 8
VALIDATION_STEP = 0


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    loss, extras = model.loss(batch["audio"], batch["roll"])  # type: ignore[operator]
    return loss, extras


def make_optimizer(family: str, model: nn.Module, config: VocoderConfig) -> torch.optim.Optimizer:
    """Adam for the likelihood families; AdamW with HiFi-GAN's betas for the GAN."""
    loop = family_config(config, family).train
    if family == "gan":
        return torch.optim.AdamW(
            model.parameters(),
            lr=loop.learning_rate,
            betas=config.gan.adam_betas,
            weight_decay=loop.weight_decay,
        )
    return torch.optim.Adam(
        model.parameters(), lr=loop.learning_rate, weight_decay=loop.weight_decay
    )


def train_vocoder(
    family: str,
    config: VocoderConfig,
    train: list[RollPiece],
    validation: list[RollPiece],
    *,
    sample_rate: int,
    seed: int,
    device: torch.device,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
) -> TrainResult:
    """Train (or resume training) the vocoder of ``family``; see :func:`fit`."""
    seed_everything(seed)
    section = family_config(config, family)
    model = build_vocoder(family, section, config.conditioning, sample_rate)
    optimizer = make_optimizer(family, model, config)
    draw = dict(segment_frames=section.segment_frames, hop_length=config.conditioning.hop_length)
    held_out = segment_batch(
        validation, seed=seed, step=VALIDATION_STEP, batch_size=VALIDATION_SEGMENTS, **draw
    )
    mel = evaluation_mel(sample_rate)

    def evaluate(model: nn.Module) -> dict[str, float]:
        audio, roll = held_out["audio"].to(device), held_out["roll"].to(device)
        loss, extras = model.loss(audio, roll)  # type: ignore[operator]
        generator = torch.Generator(device=device).manual_seed(seed)
        generated = model.generate(roll, generator=generator)  # type: ignore[operator]
        scores = {"loss": float(loss), **{name: float(value) for name, value in extras.items()}}
        scores["generated_mel_l1"] = float(mel_l1(generated, audio, mel))
        return scores

    return fit(
        model,
        optimizer,
        loss_fn=_loss,
        batch_for_step=lambda step: segment_batch(
            train, seed=seed, step=step, batch_size=section.train.batch_size, **draw
        ),
        loop=section.train,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=checkpoint_config(family, section, config.conditioning, sample_rate, seed),
        device=device,
        evaluate=evaluate,
    )
