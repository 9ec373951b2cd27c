"""Training a vocoder family with the shared loop.

Batches are random frame-aligned excerpts of the train split (one draw per step,
seeded by the step). Validation runs on a fixed set of excerpts of the validation
split: the family's own loss terms (teacher-forced for the WaveNet) and, for every
family alike, the log-mel L1 between audio the model generates from the excerpts'
rolls and the true audio, the figure that compares families on one scale.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from wavegen_core.audio.spectral import evaluation_mel, mel_l1
from wavegen_core.data.pairs import RollPiece, segment_batch
from wavegen_core.models.spec import PhaseLoss
from wavegen_core.models.vocoders.registry import vocoder_spec
from wavegen_core.params import VocoderConfig
from wavegen_core.seeding import seed_everything
from wavegen_core.training.loop import PhaseLossFn, TrainResult, fit

# Validation excerpts: a fixed draw, the same at every evaluation and in every run.
VALIDATION_SEGMENTS = 8
VALIDATION_STEP = 0


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    loss, extras = model.loss(batch["audio"], batch["roll"])  # type: ignore[operator]
    return loss, extras


def _phase_loss_fns(phases: Mapping[str, PhaseLoss]) -> dict[str, PhaseLossFn[Any]]:
    """The loop's form of a family's phase losses: each reads the batch's audio and roll."""

    def on_batch(phase: PhaseLoss) -> PhaseLossFn[Any]:
        return lambda _, batch, carry: phase(batch["audio"], batch["roll"], carry)

    return {name: on_batch(phase) for name, phase in phases.items()}


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
    eval_prefix: str = "eval",
    on_step: Callable[[int], None] | None = None,
    mel: bool = False,
) -> TrainResult:
    """Train (or resume training) the vocoder of ``family``; see :func:`fit`. With
    ``mel``, the model is conditioned on the log-mel frames of the true audio
    (``vocoder.mel``) and its conditioning takes ``vocoder.mel.excitation``."""
    seed_everything(seed)
    spec = vocoder_spec(family)
    section = config.section(family)
    conditioning = config.mel_conditioning() if mel else config.conditioning
    frames = config.mel.frames() if mel else None
    saved = spec.checkpoint_config(section, conditioning, sample_rate, seed, mel=frames)
    model = spec.build(saved)
    spec.initialise(model, train)
    draw = dict(
        segment_frames=section.segment_frames,
        hop_length=conditioning.hop_length,
        history_frames=section.roll_history(conditioning, sample_rate),
    )
    mel_frames = model.conditioning.mel_frames if mel else None

    def batch(pieces: list[RollPiece], step: int, size: int) -> dict[str, torch.Tensor]:
        drawn = segment_batch(pieces, seed=seed, step=step, batch_size=size, **draw)
        if mel_frames is not None:
            drawn["roll"] = mel_frames.attach(drawn["roll"], drawn["audio"])
        return drawn

    held_out = batch(validation, VALIDATION_STEP, VALIDATION_SEGMENTS)
    judged_mel = evaluation_mel(sample_rate)

    def evaluate(model: nn.Module) -> dict[str, float]:
        audio, roll = held_out["audio"].to(device), held_out["roll"].to(device)
        loss, extras = model.loss(audio, roll)  # type: ignore[operator]
        generator = torch.Generator(device=device).manual_seed(seed)
        # The frames before the excerpt are read, not rendered.
        history = roll.shape[-1] - audio.shape[-1] // conditioning.hop_length
        generated = model.generate(  # type: ignore[operator]
            roll, generator=generator, history=history
        )
        scores = {"loss": float(loss), **{name: float(value) for name, value in extras.items()}}
        scores["generated_mel_l1"] = float(mel_l1(generated, audio, judged_mel))
        return scores

    phases = spec.phase_losses(model)
    return fit(
        model,
        spec.optimisers(model, section.train, saved),
        loss_fn=_loss if phases is None else _phase_loss_fns(phases),
        batch_for_step=lambda step: batch(train, step, section.train.batch_size),
        loop=section.train,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=saved,
        device=device,
        evaluate=evaluate,
        eval_prefix=eval_prefix,
        on_step=on_step,
    )
