"""Aligned audio and conditioning rolls of a prepared corpus: the vocoders' training pairs.

Each piece's audio is padded with silence to a whole number of conditioning frames,
so frame ``i`` of the roll conditions samples ``i * hop`` to ``(i + 1) * hop`` exactly.
A training batch is a set of random excerpts that start on a frame boundary; the batch
of step N depends only on (seed, N), which makes a resumed run equal an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import Piece
from wavegen_core.midi.events import pedal_intervals, performance_notes
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY, MAX_VELOCITY
from wavegen_core.seeding import step_generator

# Features per key, then features of the whole instrument: the roll's channels are
# ``f * KEY_COUNT + key`` for ROLL_FEATURES[f], then one channel per PIANO_FEATURES entry.
ROLL_FEATURES = ("onset", "sounding", "velocity")
PIANO_FEATURES = ("pedal",)
KEY_CHANNELS = len(ROLL_FEATURES) * KEY_COUNT
PEDAL_CHANNEL = KEY_CHANNELS
ROLL_CHANNELS = KEY_CHANNELS + len(PIANO_FEATURES)


def conditioning_roll(
    midi: pretty_midi.PrettyMIDI, n_frames: int, frames_per_second: float
) -> np.ndarray:
    """The (ROLL_CHANNELS, n_frames) float32 roll of ``midi``: onsets, sounding and
    velocity per key, then the sustain pedal.

    Channels ``f * 88 + key`` hold feature ``ROLL_FEATURES[f]`` of key ``key`` (A0 = 0).
    A note from ``start`` to ``end`` seconds starts in frame ``floor(start * fps)``
    (the frame whose samples hold its attack) and sounds until frame
    ``ceil(end * fps)``, at least one frame. The sustain pedal lengthens notes first,
    as it does for the Music Transformer's events. Notes past ``n_frames`` are cut;
    keys off the piano are left out. Channel ``PEDAL_CHANNEL`` is 1 in the frames where
    the sustain pedal is down (CC 64 >= 64, on the same frame grid): a pedalled piano
    lifts every damper, so strings that are not played ring in sympathy.
    """
    pedal = np.zeros((1, n_frames), dtype=np.float32)
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        for down, up in pedal_intervals(instrument):
            first = max(int(math.floor(down * frames_per_second)), 0)
            last = max(int(math.ceil(up * frames_per_second)), first + 1)
            pedal[0, first:last] = 1.0
    roll = np.zeros((len(ROLL_FEATURES), KEY_COUNT, n_frames), dtype=np.float32)
    onset, sounding, velocity = roll
    for note in performance_notes(midi, sustain=True):
        key = note.pitch - LOWEST_KEY
        if not 0 <= key < KEY_COUNT:
            continue
        first = int(math.floor(note.start * frames_per_second))
        last = max(int(math.ceil(note.end * frames_per_second)), first + 1)
        if first >= n_frames or last <= 0:
            continue
        first = max(first, 0)
        sounding[key, first:last] = 1.0
        # A later note of the same key takes over the velocity from its onset on.
        velocity[key, first:last] = note.velocity / MAX_VELOCITY
        onset[key, first] = 1.0
    return np.concatenate([roll.reshape(KEY_CHANNELS, n_frames), pedal])


def frames_for_samples(samples: int, hop_length: int) -> int:
    """Conditioning frames covering ``samples`` samples (the last one may run past the end)."""
    return -(-samples // hop_length)


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
    history_frames: int = 0,
) -> dict[str, torch.Tensor]:
    """``batch_size`` random excerpts of ``segment_frames`` frames: ``audio``
    (batch, segment_frames * hop) and ``roll`` (batch, ROLL_CHANNELS, history_frames +
    segment_frames), zero-padded past a piece's end and before its start. A piece is
    picked uniformly, then a start frame; the roll also holds the ``history_frames``
    frames before the excerpt, for a model that must know how long a note has sounded."""
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
        roll = np.zeros((piece.roll.shape[0], history_frames + segment_frames), dtype=np.float32)
        earliest = max(first - history_frames, 0)
        window = piece.roll[:, earliest : first + segment_frames]
        offset = earliest - (first - history_frames)
        roll[:, offset : offset + window.shape[1]] = window
        audios.append(audio)
        rolls.append(roll)
    return {"audio": torch.from_numpy(np.stack(audios)), "roll": torch.from_numpy(np.stack(rolls))}
