"""The transcriber's training batches: augmentation on the step's own stream, exact on resume."""

from __future__ import annotations

import numpy as np
import torch

from wavegen_core.audio.augment import AugmentConfig
from wavegen_core.config import TranscriptionConfig
from wavegen_core.data.segments import AlignedPiece
from wavegen_core.midi.rolls import TARGET_NAMES
from wavegen_core.training.transcriber import training_batch

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
