"""Aligned audio + frame-target excerpts of a prepared corpus, drawn per training step.

A batch is a set of excerpts that start on the frame grid, so excerpt audio and
excerpt targets line up exactly. The batch of step N depends only on (seed, N), which
is what makes a resumed training run equal an uninterrupted one.

A piece's audio is either in memory or streamed: read from its prepared file a frame
range per excerpt (:class:`~wavegen_core.audio.io.AudioFile`), so that memory is
bounded by the batch, not the corpus (MAESTRO's 200 hours are about 46 GB as float32).
Its labels are a :class:`~wavegen_core.midi.rolls.NoteTable`, a few numbers per note,
from which each excerpt's targets are built; the whole-piece target arrays (88 keys ×
4 targets per frame, more than the audio itself) are never made. Streamed and
in-memory pieces give the same excerpts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wavegen_core.audio.io import AudioFile, load_audio, read_padded
from wavegen_core.audio.mel import MelConfig
from wavegen_core.data.manifest import Piece
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import TARGET_NAMES, NoteTable
from wavegen_core.seeding import step_generator


@dataclass(frozen=True)
class AlignedPiece:
    """A piece's audio (in memory, or a file read per excerpt) and its frame targets
    (whole (frames, 88) arrays, or the notes they are built from); frame i is centred
    on sample i*hop."""

    id: str
    audio: np.ndarray | AudioFile
    targets: dict[str, np.ndarray] | NoteTable

    @property
    def n_frames(self) -> int:
        if isinstance(self.targets, NoteTable):
            return self.targets.total
        return len(self.targets["frames"])

    def read(self, start: int, count: int) -> np.ndarray:
        """Audio samples ``start .. start + count - 1``, zero past the end."""
        return read_padded(self.audio, start, count)

    def window(self, first: int, n_frames: int) -> dict[str, np.ndarray]:
        """Targets of frames ``first .. first + n_frames - 1``, zero past the end."""
        if isinstance(self.targets, NoteTable):
            return self.targets.window(first, n_frames)
        window = {}
        for name in TARGET_NAMES:
            rows = self.targets[name][first : first + n_frames]
            padded = np.zeros((n_frames, self.targets[name].shape[1]), dtype=np.float32)
            padded[: len(rows)] = rows
            window[name] = padded
        return window


def load_aligned(
    pieces: list[Piece],
    corpus_dir: str | os.PathLike[str],
    mel: MelConfig,
    stream: bool = False,
) -> list[AlignedPiece]:
    """The pieces of a prepared corpus that have MIDI, with their labels as note tables;
    their audio in memory, or with ``stream`` left on disk and read per excerpt."""
    root = Path(corpus_dir)
    aligned = []
    for piece in pieces:
        if piece.midi is None:
            continue
        audio: np.ndarray | AudioFile
        if stream:
            audio = AudioFile.at_rate(root / piece.audio, mel.sample_rate)
            samples = audio.samples
        else:
            audio = load_audio(root / piece.audio, mel.sample_rate)
            samples = len(audio)
        n_frames = samples // mel.hop_length + 1
        notes = NoteTable.from_midi(load_midi(root / piece.midi), mel.frames_per_second, n_frames)
        aligned.append(AlignedPiece(piece.id, audio, notes))
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
    return piece.read(first_frame * hop_length, samples), piece.window(first_frame, n_frames)


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
        last_start = max(piece.n_frames - n_frames, 0)
        first = int(torch.randint(last_start + 1, (1,), generator=generator))
        audio, target = excerpt(piece, first, n_frames, hop_length)
        audios.append(audio)
        targets.append(target)
    batch = {"audio": torch.from_numpy(np.stack(audios))}
    for name in TARGET_NAMES:
        batch[name] = torch.from_numpy(np.stack([t[name] for t in targets]))
    return batch
