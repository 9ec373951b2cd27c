"""Aligned audio and conditioning rolls of a prepared corpus: the vocoders' training pairs.

Each piece's audio is padded with silence to a whole number of conditioning frames,
so frame ``i`` of the roll conditions samples ``i * hop`` to ``(i + 1) * hop`` exactly.
A training batch is a set of random excerpts that start on a frame boundary; the batch
of step N depends only on (seed, N), which makes a resumed run equal an uninterrupted one.

A piece is held in memory (audio, and its roll as float16), or streamed: its audio read
from the prepared file a frame range per excerpt, its roll built per excerpt from a
:class:`RollTable` of its notes and pedal. The roll has 265 channels per frame, half
the audio's bytes even as float16, so for a large corpus neither is kept whole. Both
kinds give the same excerpts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import torch

from wavegen_core.audio.io import AudioFile, load_audio, read_padded
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
    velocity per key, then the sustain pedal (see :class:`RollTable`)."""
    return RollTable.from_midi(midi, n_frames, frames_per_second).window(0, n_frames)


@dataclass(frozen=True)
class RollTable:
    """A piece's conditioning roll as the notes and pedal intervals it is drawn from;
    :meth:`window` gives the (ROLL_CHANNELS, n) float32 roll of any frame range:
    onsets, sounding and velocity per key, then the sustain pedal.

    Channels ``f * 88 + key`` hold feature ``ROLL_FEATURES[f]`` of key ``key`` (A0 = 0).
    A note from ``start`` to ``end`` seconds starts in frame ``floor(start * fps)``
    (the frame whose samples hold its attack) and sounds until frame
    ``ceil(end * fps)``, at least one frame. The sustain pedal lengthens notes first,
    as it does for the Music Transformer's events. Notes past ``n_frames`` are cut;
    keys off the piano are left out. Channel ``PEDAL_CHANNEL`` is 1 in the frames where
    the sustain pedal is down (CC 64 >= 64, on the same frame grid): a pedalled piano
    lifts every damper, so strings that are not played ring in sympathy.

    Rows are kept in the order the roll is written (a later note of a key takes over
    its velocity from its onset on), so any window equals that slice of the whole roll.
    """

    keys: np.ndarray  # int64, 0..87
    firsts: np.ndarray  # int64: the note's first frame (>= 0)
    lasts: np.ndarray  # int64: one past its last sounding frame
    velocities: np.ndarray  # float32, velocity / 127
    pedal: np.ndarray  # (k, 2) int64: [first, last) frames with the pedal down
    frames: int

    @classmethod
    def from_midi(
        cls, midi: pretty_midi.PrettyMIDI, n_frames: int, frames_per_second: float
    ) -> RollTable:
        pedal = []
        for instrument in midi.instruments:
            if instrument.is_drum:
                continue
            for down, up in pedal_intervals(instrument):
                first = max(int(math.floor(down * frames_per_second)), 0)
                last = max(int(math.ceil(up * frames_per_second)), first + 1)
                pedal.append((first, last))
        keys, firsts, lasts, velocities = [], [], [], []
        for note in performance_notes(midi, sustain=True):
            key = note.pitch - LOWEST_KEY
            if not 0 <= key < KEY_COUNT:
                continue
            first = int(math.floor(note.start * frames_per_second))
            last = max(int(math.ceil(note.end * frames_per_second)), first + 1)
            if first >= n_frames or last <= 0:
                continue
            keys.append(key)
            firsts.append(max(first, 0))
            lasts.append(last)
            velocities.append(note.velocity / MAX_VELOCITY)
        return cls(
            keys=np.array(keys, dtype=np.int64),
            firsts=np.array(firsts, dtype=np.int64),
            lasts=np.array(lasts, dtype=np.int64),
            velocities=np.array(velocities, dtype=np.float32),
            pedal=np.array(pedal, dtype=np.int64).reshape(-1, 2),
            frames=n_frames,
        )

    def window(self, first: int, n: int, velocity_dtype: type = np.float32) -> np.ndarray:
        """Frames ``first .. first + n - 1`` of the roll (``first`` may be negative), zero
        outside the piece; velocities rounded through ``velocity_dtype`` (float16 gives
        exactly what a roll stored as float16 holds)."""
        low, high = max(first, 0), min(first + n, self.frames)
        out = np.zeros((ROLL_CHANNELS, n), dtype=np.float32)
        if low >= high:
            return out
        onset = out[:KEY_COUNT]
        sounding = out[KEY_COUNT : 2 * KEY_COUNT]
        velocity = out[2 * KEY_COUNT : KEY_CHANNELS]
        for start, stop in self.pedal:
            a, b = max(start, low), min(stop, high)
            if a < b:
                out[PEDAL_CHANNEL, a - first : b - first] = 1.0
        values: np.ndarray = self.velocities.astype(velocity_dtype)
        for index in np.flatnonzero((self.firsts < high) & (self.lasts > low)):
            key, start, stop = self.keys[index], self.firsts[index], self.lasts[index]
            a, b = max(start, low), min(stop, high)
            sounding[key, a - first : b - first] = 1.0
            velocity[key, a - first : b - first] = values[index]
            if low <= start < high:
                onset[key, start - first] = 1.0
        return out


def frames_for_samples(samples: int, hop_length: int) -> int:
    """Conditioning frames covering ``samples`` samples (the last one may run past the end)."""
    return -(-samples // hop_length)


@dataclass(frozen=True)
class RollPiece:
    """A piece's audio, ``samples`` = frames * hop long, and its (ROLL_CHANNELS, frames)
    roll: in memory (the audio padded with silence, the roll as float16, whose values
    are 0, 1 and velocities / 127), or streamed (an :class:`AudioFile` read per excerpt,
    zero past its end, and a :class:`RollTable`)."""

    id: str
    audio: np.ndarray | AudioFile
    roll: np.ndarray | RollTable
    samples: int

    @property
    def frames(self) -> int:
        return self.roll.frames if isinstance(self.roll, RollTable) else int(self.roll.shape[1])

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples ``start .. start + count - 1`` of the padded audio, zero past its end."""
        if isinstance(self.audio, AudioFile):
            stop = min(start + count, self.samples)
            out = np.zeros(count, dtype=np.float32)
            if stop > start:
                out[: stop - start] = self.audio.read(start, stop - start)
            return out
        return read_padded(self.audio, start, count)

    def roll_window(self, first: int, n: int) -> np.ndarray:
        """Frames ``first .. first + n - 1`` of the roll as float32, zero outside it."""
        if isinstance(self.roll, RollTable):
            return self.roll.window(first, n, velocity_dtype=np.float16)
        out = np.zeros((self.roll.shape[0], n), dtype=np.float32)
        low, high = max(first, 0), min(first + n, self.frames)
        if low < high:
            out[:, low - first : high - first] = self.roll[:, low:high]
        return out


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
    return RollPiece(piece_id, padded, roll.astype(np.float16), len(padded))


def load_pairs(
    pieces: list[Piece],
    corpus_dir: str | os.PathLike[str],
    sample_rate: int,
    hop_length: int,
    stream: bool = False,
) -> list[RollPiece]:
    """Audio and rolls of the ``pieces`` that have MIDI, from a prepared corpus: in
    memory, or with ``stream`` read per excerpt from the files."""
    root = Path(corpus_dir)
    pairs = []
    for piece in pieces:
        if piece.midi is None:
            continue
        midi = load_midi(root / piece.midi)
        if not stream:
            audio = load_audio(root / piece.audio, sample_rate)
            pairs.append(pair_piece(piece.id, audio, midi, sample_rate, hop_length))
            continue
        file = AudioFile.at_rate(root / piece.audio, sample_rate)
        frames = frames_for_samples(file.samples, hop_length)
        table = RollTable.from_midi(midi, frames, sample_rate / hop_length)
        pairs.append(RollPiece(piece.id, file, table, frames * hop_length))
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
        audios.append(piece.read(first * hop_length, samples))
        rolls.append(piece.roll_window(first - history_frames, history_frames + segment_frames))
    return {"audio": torch.from_numpy(np.stack(audios)), "roll": torch.from_numpy(np.stack(rolls))}
