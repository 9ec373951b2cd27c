"""Aligned audio and conditioning rolls of a prepared corpus: the vocoders' training pairs.

Each piece's audio is padded with silence to a whole number of conditioning frames,
so frame ``i`` of the roll conditions samples ``i * hop`` to ``(i + 1) * hop`` exactly.
A training batch is a set of random excerpts that start on a frame boundary; the batch
of step N depends only on (seed, N), which makes a resumed run equal an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import Piece
from wavegen_core.midi.io import load_midi
from wavegen_core.models.conditioning import conditioning_roll, frames_for_samples
from wavegen_core.training.seeding import step_generator


@dataclass(frozen=True)
class RollPiece:
    """A piece's audio, (frames * hop,) float32, and its (ROLL_CHANNELS, frames) roll.

    The roll is stored as float16 (its values are 0, 1 and velocities / 127), which
    halves the memory of a large corpus.
    """

    id: str
    audio: np.ndarray
    roll: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.roll.shape[1])


def roll_for_midi(
    midi: pretty_midi.PrettyMIDI, samples: int, sample_rate: int, hop_length: int
) -> np.ndarray:
    """The conditioning roll of ``midi`` covering ``samples`` samples of audio."""
    frames = frames_for_samples(samples, hop_length)
    return conditioning_roll(midi, frames, sample_rate / hop_length)


def pair_piece(
    piece_id: str,
    audio: np.ndarray,
    midi: pretty_midi.PrettyMIDI,
    sample_rate: int,
    hop_length: int,
) -> RollPiece:
    """Audio padded to whole frames, and the roll of its MIDI."""
    roll = roll_for_midi(midi, len(audio), sample_rate, hop_length)
    padded = np.zeros(roll.shape[1] * hop_length, dtype=np.float32)
    padded[: len(audio)] = audio
    return RollPiece(piece_id, padded, roll.astype(np.float16))


def load_pairs(
    pieces: list[Piece],
    corpus_dir: str | os.PathLike[str],
    sample_rate: int,
    hop_length: int,
) -> list[RollPiece]:
    """Audio and rolls of the ``pieces`` that have MIDI, from a prepared corpus."""
    root = Path(corpus_dir)
    pairs = [
        pair_piece(
            piece.id,
            load_audio(root / piece.audio, sample_rate),
            load_midi(root / piece.midi),
            sample_rate,
            hop_length,
        )
        for piece in pieces
        if piece.midi is not None
    ]
    if not pairs:
        raise ValueError("no piece with both audio and MIDI to train or evaluate a vocoder on")
    return pairs


def segment_batch(
    pieces: list[RollPiece],
    *,
    seed: int,
    step: int,
    batch_size: int,
    segment_frames: int,
    hop_length: int,
) -> dict[str, torch.Tensor]:
    """``batch_size`` random excerpts of ``segment_frames`` frames: ``audio``
    (batch, segment_frames * hop) and ``roll`` (batch, ROLL_CHANNELS, segment_frames),
    zero-padded past a piece's end. A piece is picked uniformly, then a start frame."""
    generator = step_generator(seed, step)
    samples = segment_frames * hop_length
    audios, rolls = [], []
    for _ in range(batch_size):
        piece = pieces[int(torch.randint(len(pieces), (1,), generator=generator))]
        last_start = max(piece.frames - segment_frames, 0)
        first = int(torch.randint(last_start + 1, (1,), generator=generator))
        audio = np.zeros(samples, dtype=np.float32)
        clip = piece.audio[first * hop_length : first * hop_length + samples]
        audio[: len(clip)] = clip
        roll = np.zeros((piece.roll.shape[0], segment_frames), dtype=np.float32)
        window = piece.roll[:, first : first + segment_frames]
        roll[:, : window.shape[1]] = window
        audios.append(audio)
        rolls.append(roll)
    return {"audio": torch.from_numpy(np.stack(audios)), "roll": torch.from_numpy(np.stack(rolls))}
