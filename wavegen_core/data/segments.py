"""Aligned audio + frame-target excerpts of a prepared corpus, drawn per training step.

Every piece's audio and its MIDI's frame targets are held in memory once; a batch is
a set of excerpts that start on the frame grid, so excerpt audio and excerpt targets
line up exactly. The batch of step N depends only on (seed, N), which is what makes a
resumed training run equal an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.audio.mel import MelConfig
from wavegen_core.data.manifest import Piece
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import TARGET_NAMES, midi_to_targets
from wavegen_core.seeding import step_generator


@dataclass(frozen=True)
class AlignedPiece:
    """A piece's audio and its (frames, 88) targets; frame i is centred on sample i*hop."""

    id: str
    audio: np.ndarray
    targets: dict[str, np.ndarray]


def load_aligned(
    pieces: list[Piece], corpus_dir: str | os.PathLike[str], mel: MelConfig
) -> list[AlignedPiece]:
    """Read the audio and MIDI of ``pieces`` (those with MIDI) from a prepared corpus."""
    root = Path(corpus_dir)
    aligned = []
    for piece in pieces:
        if piece.midi is None:
            continue
        audio = load_audio(root / piece.audio, mel.sample_rate)
        n_frames = len(audio) // mel.hop_length + 1
        targets = midi_to_targets(load_midi(root / piece.midi), n_frames, mel.frames_per_second)
        aligned.append(AlignedPiece(piece.id, audio, targets))
    if not aligned:
        raise ValueError("no piece with MIDI to train or evaluate on")
    return aligned


def excerpt(
    piece: AlignedPiece, first_frame: int, n_frames: int, hop_length: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Audio and targets of ``n_frames`` frames from ``first_frame``, zero-padded past the end.

    The audio holds ``(n_frames - 1) * hop_length`` samples, which the centred STFT
    turns into exactly ``n_frames`` frames.
    """
    samples = (n_frames - 1) * hop_length
    start = first_frame * hop_length
    audio = np.zeros(samples, dtype=np.float32)
    clip = piece.audio[start : start + samples]
    audio[: len(clip)] = clip
    targets = {}
    for name in TARGET_NAMES:
        window = np.zeros((n_frames, piece.targets[name].shape[1]), dtype=np.float32)
        rows = piece.targets[name][first_frame : first_frame + n_frames]
        window[: len(rows)] = rows
        targets[name] = window
    return audio, targets


def excerpt_batch(
    pieces: list[AlignedPiece],
    *,
    seed: int,
    step: int,
    batch_size: int,
    n_frames: int,
    hop_length: int,
) -> dict[str, torch.Tensor]:
    """``batch_size`` random excerpts: ``audio`` (batch, samples) and each target
    (batch, n_frames, 88). A piece is picked uniformly, then a start frame within it."""
    generator = step_generator(seed, step)
    audios, targets = [], []
    for _ in range(batch_size):
        piece = pieces[int(torch.randint(len(pieces), (1,), generator=generator))]
        last_start = max(len(piece.targets["frames"]) - n_frames, 0)
        first = int(torch.randint(last_start + 1, (1,), generator=generator))
        audio, target = excerpt(piece, first, n_frames, hop_length)
        audios.append(audio)
        targets.append(target)
    batch = {"audio": torch.from_numpy(np.stack(audios))}
    for name in TARGET_NAMES:
        batch[name] = torch.from_numpy(np.stack([t[name] for t in targets]))
    return batch
