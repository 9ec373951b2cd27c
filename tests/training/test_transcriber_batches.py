"""The transcriber's training batches: augmentation on the step's own stream, exact on resume."""

from __future__ import annotations

import numpy as np
import torch

from wavegen_core.audio.augment import AugmentConfig
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.segments import AlignedPiece
from wavegen_core.midi.rolls import TARGET_NAMES
from wavegen_core.params import TranscriptionConfig
from wavegen_core.training.transcriber import train_transcriber, training_batch

FRAMES = 40


def _pieces() -> list[AlignedPiece]:
    generator = np.random.default_rng(0)
    pieces = []
    for index in range(3):
        audio = (0.1 * generator.standard_normal(16000 * 2)).astype(np.float32)
        targets = {name: np.zeros((200, 88), np.float32) for name in TARGET_NAMES}
        targets["frames"][:, 40 + index] = 1.0
        pieces.append(AlignedPiece(f"p{index}", audio, targets))
    return pieces


def test_augmented_batches_keep_their_excerpts_and_labels_and_repeat_per_step() -> None:
    plain = TranscriptionConfig()
    augmented = TranscriptionConfig(augment=AugmentConfig(enabled=True, room_probability=1.0))
    pieces = _pieces()
    before = training_batch(pieces, plain, seed=5, step=3, n_frames=FRAMES)
    after = training_batch(pieces, augmented, seed=5, step=3, n_frames=FRAMES)
    again = training_batch(pieces, augmented, seed=5, step=3, n_frames=FRAMES)
    # The same excerpts are drawn (the augmentation has its own stream): labels agree.
    for name in TARGET_NAMES:
        assert torch.equal(before[name], after[name])
    assert after["audio"].shape == before["audio"].shape
    assert not torch.allclose(after["audio"], before["audio"])
    # A function of (seed, step): what a resumed run draws again is what it drew.
    assert torch.equal(after["audio"], again["audio"])
    other_step = training_batch(pieces, augmented, seed=5, step=4, n_frames=FRAMES)
    assert not torch.equal(other_step["audio"], after["audio"])


def _train(config: TranscriptionConfig, steps: int, workdir) -> dict[str, torch.Tensor]:
    config = config.model_copy(
        update={
            "train": config.train.model_copy(
                update={"steps": steps, "checkpoint_every": 2, "eval_every": 4, "log_every": 1}
            )
        }
    )
    train_transcriber(
        config,
        _pieces(),
        _pieces()[:1],
        seed=5,
        device=torch.device("cpu"),
        checkpoint_path=workdir / "checkpoint.pt",
        metrics_dir=workdir / "reports",
    )
    return load_checkpoint(workdir / "checkpoint.pt")


def test_an_augmented_run_resumed_halfway_ends_bit_exact(tmp_path) -> None:
    config = TranscriptionConfig(
        segment_seconds=1.0,
        augment=AugmentConfig(enabled=True, room_probability=1.0, noise_probability=1.0),
    )
    whole = _train(config, 6, tmp_path / "whole")
    _train(config, 3, tmp_path / "resumed")  # a run stopped after step 3 ...
    resumed = _train(config, 6, tmp_path / "resumed")  # ... and resumed from there
    assert resumed["step"] == whole["step"] == 6
    assert resumed["config"]["augment"]["enabled"] is True
    for name, weights in whole["state"].items():
        assert torch.equal(resumed["state"][name], weights), name
    assert resumed["metrics"] == whole["metrics"]
    # The same bytes, so DVC gives both runs one hash.
    assert (tmp_path / "resumed/checkpoint.pt").read_bytes() == (
        tmp_path / "whole/checkpoint.pt"
    ).read_bytes()
