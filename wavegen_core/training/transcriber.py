"""Training the Onsets and Frames transcriber with the shared loop.

The batches are frame-aligned excerpts of the train split (one random draw per step,
seeded by the step); validation runs on a fixed set of excerpts of the validation
split and reports its loss and mir_eval's note-onset F1.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from wavegen_core.audio.augment import augment
from wavegen_core.data.segments import AlignedPiece, excerpt_batch
from wavegen_core.evaluation.transcription import note_onset_f1
from wavegen_core.midi.rolls import NoteDecodingConfig, decode_notes
from wavegen_core.models.transcription.onsets_frames import (
    SPEC,
    OnsetsAndFrames,
    transcription_loss,
)
from wavegen_core.params import TranscriptionConfig
from wavegen_core.seeding import augment_generator, seed_everything
from wavegen_core.training.loop import TrainResult, fit

# Validation excerpts: a fixed draw, the same at every evaluation and in every run.
VALIDATION_EXCERPTS = 16
VALIDATION_STEP = 0


def _forward(model: nn.Module, audio: torch.Tensor) -> dict[str, torch.Tensor]:
    assert isinstance(model, OnsetsAndFrames)
    return model(model.frontend(audio))


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    assert isinstance(model, OnsetsAndFrames)
    return transcription_loss(_forward(model, batch["audio"]), batch, model.config)


def onset_f1(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    decoding: NoteDecodingConfig,
    frames_per_second: float,
) -> float:
    """Mean note-onset F1 over a batch: decoded predictions against decoded targets."""
    scores = []
    for index in range(targets["onsets"].shape[0]):
        truth = decode_notes(
            targets["onsets"][index].numpy(),
            targets["frames"][index].numpy(),
            targets["velocity"][index].numpy(),
            NoteDecodingConfig(),
            frames_per_second,
        )
        if not truth:
            continue
        predicted = decode_notes(
            torch.sigmoid(outputs["onset_logits"][index]).cpu().numpy(),
            torch.sigmoid(outputs["frame_logits"][index]).cpu().numpy(),
            outputs["velocity"][index].cpu().numpy(),
            decoding,
            frames_per_second,
        )
        f1 = note_onset_f1(truth, predicted)
        scores.append(f1)
    return float(np.mean(scores)) if scores else 0.0


def training_batch(
    train: list[AlignedPiece],
    config: TranscriptionConfig,
    *,
    seed: int,
    step: int,
    n_frames: int,
) -> dict[str, torch.Tensor]:
    """The excerpts of training step ``step``, their audio augmented when
    ``config.augment`` is on; a function of (seed, step), so a resumed run is exact."""
    mel = config.model.mel
    batch = excerpt_batch(
        train,
        seed=seed,
        step=step,
        batch_size=config.train.batch_size,
        n_frames=n_frames,
        hop_length=mel.hop_length,
    )
    if config.augment.enabled:
        generator = augment_generator(seed, step)
        batch["audio"] = augment(batch["audio"], generator, config.augment, mel.sample_rate)
    return batch


def train_transcriber(
    config: TranscriptionConfig,
    train: list[AlignedPiece],
    validation: list[AlignedPiece],
    *,
    seed: int,
    device: torch.device,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
    eval_prefix: str = "eval",
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train (or resume training) an Onsets and Frames model; see :func:`fit`."""
    seed_everything(seed)
    saved = SPEC.checkpoint_config(config.model, segment_seconds=config.segment_seconds, seed=seed)
    if config.augment.enabled:
        # A run with augmentation is another run: its checkpoint must not resume one without.
        saved["augment"] = config.augment.model_dump(mode="json")
    model = SPEC.build(saved)
    loop = config.train
    mel = config.model.mel
    n_frames = round(config.segment_seconds * mel.frames_per_second)
    draw = dict(n_frames=n_frames, hop_length=mel.hop_length)
    held_out = excerpt_batch(
        validation, seed=seed, step=VALIDATION_STEP, batch_size=VALIDATION_EXCERPTS, **draw
    )

    def evaluate(model: nn.Module) -> dict[str, float]:
        batch = {name: tensor.to(device) for name, tensor in held_out.items()}
        outputs = _forward(model, batch["audio"])
        loss, _ = transcription_loss(outputs, batch, config.model)
        cpu = {name: tensor.cpu() for name, tensor in held_out.items()}
        f1 = onset_f1(outputs, cpu, config.decoding, mel.frames_per_second)
        return {"loss": float(loss), "onset_f1": f1}

    return fit(
        model,
        SPEC.optimisers(model, loop, saved),
        loss_fn=_loss,
        batch_for_step=lambda step: training_batch(
            train, config, seed=seed, step=step, n_frames=n_frames
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
