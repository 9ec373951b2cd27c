"""The levels of the learnt hierarchy on disk: the corpus's audio, and each tier's codes.

Tier 1 reads the prepared corpus's audio; `encode@<k>` writes tier k's codes of every
piece to `data/codes/<k>/`, which is all that tier k + 1 reads (never tier k's
checkpoint). A codes directory holds:

* ``codes.npz``: one int array per piece id, the codes in time order;
* ``codebook.npy``: the (K, dim) float32 code vectors, the input of tier k + 1's encoder;
* ``manifest.json``: the tier's hop and rate, and each piece's id, split and length;
* ``metrics`` of its own are the stage's, under ``reports/encode/<k>/``.

Training excerpts are drawn like the vocoders' (:mod:`wavegen_core.data.pairs`): the
batch of step N depends only on (seed, N), so a resumed run equals an uninterrupted one.
The audio level may be streamed: each piece's file read a range per excerpt (and whole,
one piece at a time, by `encode`), so that tier 1's memory does not grow with the
corpus. Codes are held in memory (stored as int16, read as int64): at tier 1's rate
(1/8 of the samples) that is a quarter of the audio's float32 bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavegen_core.audio.io import AudioFile, AudioReadError, load_audio
from wavegen_core.data.manifest import read_manifest
from wavegen_core.errors import WavegenError
from wavegen_core.files import atomic_path, write_json
from wavegen_core.seeding import step_generator

CODES_FILE = "codes.npz"
CODEBOOK_FILE = "codebook.npy"
MANIFEST_FILE = "manifest.json"
# Splits a tier learns from: the unlabelled pool has audio, which is all a VQ-VAE needs.
TRAINING_SPLITS = ("train", "unlabelled")


@dataclass(frozen=True)
class LevelPiece:
    """One piece at one level: audio (float32 samples, in memory or a file read per
    range) or codes (int64), in time order."""

    id: str
    split: str
    values: np.ndarray | AudioFile

    @property
    def length(self) -> int:
        if isinstance(self.values, AudioFile):
            return self.values.samples
        return int(self.values.shape[0])

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32) if isinstance(self.values, AudioFile) else self.values.dtype

    def read(self, first: int, count: int) -> np.ndarray:
        """Steps ``first .. first + count - 1``, zero (silence, or code 0) past the end."""
        if isinstance(self.values, AudioFile):
            return self.values.read(first, count)
        out = np.zeros(count, dtype=self.values.dtype)
        clip = self.values[first : first + count]
        out[: len(clip)] = clip
        return out

    def whole(self) -> np.ndarray:
        """Every step of the piece, in memory."""
        if isinstance(self.values, AudioFile):
            return self.values.read(0, self.values.samples)
        return self.values


@dataclass(frozen=True)
class Level:
    """All pieces at one level, and the code vectors when the level is a tier's codes."""

    pieces: list[LevelPiece]
    codebook: np.ndarray | None  # (K, dim) for codes, None for audio
    info: dict[str, Any]

    def split(self, *names: str) -> list[LevelPiece]:
        return [piece for piece in self.pieces if piece.split in names]


def training_split(level: Level) -> list[LevelPiece]:
    """The pieces a tier trains on; the validation split when nothing else is there."""
    pieces = level.split(*TRAINING_SPLITS) or level.split("validation")
    if not pieces:
        raise ValueError("no piece in the train, unlabelled or validation split to train on")
    return pieces


def load_audio_level(
    corpus_dir: str | os.PathLike[str], sample_rate: int, stream: bool = False
) -> tuple[Level, list[dict[str, str]]]:
    """The prepared corpus's audio, every split (in memory, or with ``stream`` left in
    its files), and the pieces that could not be read."""
    root = Path(corpus_dir)
    pieces, rejected = [], []
    for piece in read_manifest(root):
        values: np.ndarray | AudioFile
        try:
            if stream:
                values = AudioFile.at_rate(root / piece.audio, sample_rate)
            else:
                values = load_audio(root / piece.audio, sample_rate).astype(np.float32)
        except (AudioReadError, OSError, RuntimeError) as err:
            rejected.append({"piece": piece.id, "reason": str(err)})
            continue
        pieces.append(LevelPiece(piece.id, piece.split, values))
    if not pieces:
        raise ValueError(f"no readable audio in {root}")
    info = {"level": "audio", "sample_rate": sample_rate, "samples_per_step": 1}
    return Level(pieces, None, info), rejected


def write_codes(
    directory: str | os.PathLike[str],
    pieces: list[LevelPiece],
    codebook: np.ndarray,
    info: dict[str, Any],
) -> None:
    """Write a codes directory (see the module docstring) into ``directory``, which
    the caller swaps in whole (:func:`~wavegen_core.files.replace_dir`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = np.int16 if codebook.shape[0] <= np.iinfo(np.int16).max else np.int32
    with atomic_path(directory / CODES_FILE) as tmp, open(tmp, "wb") as handle:
        arrays: dict[str, Any] = {piece.id: piece.whole().astype(dtype) for piece in pieces}
        np.savez(handle, **arrays)
    with atomic_path(directory / CODEBOOK_FILE) as tmp, open(tmp, "wb") as handle:
        np.save(handle, codebook.astype(np.float32))
    records = [{"id": p.id, "split": p.split, "length": p.length} for p in pieces]
    write_json(directory / MANIFEST_FILE, {**info, "pieces": records})


def read_codes(directory: str | os.PathLike[str]) -> Level:
    """A codes directory as :func:`write_codes` wrote it, codes as int64."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    records = manifest.pop("pieces")
    codebook = np.load(directory / CODEBOOK_FILE)
    with np.load(directory / CODES_FILE) as archive:
        pieces = [
            LevelPiece(r["id"], r["split"], archive[r["id"]].astype(np.int64)) for r in records
        ]
    return Level(pieces, codebook, manifest)


def load_level(
    path: str | os.PathLike[str], sample_rate: int, stream: bool = False
) -> tuple[Level, list[dict[str, str]]]:
    """The level at ``path``: a codes directory, or else a prepared corpus's audio
    (streamed from its files with ``stream``)."""
    if (Path(path) / CODES_FILE).exists():
        return read_codes(path), []
    return load_audio_level(path, sample_rate, stream)


def check_level_below(level: Level, tier: int, path: str | os.PathLike[str]) -> None:
    """Refuse a level that is not what tier ``tier`` encodes: audio for tier 1, the codes
    of tier ``tier - 1`` above it (read from what the level is, not from its path)."""
    below = level.info.get("tier")
    if tier == 1 and below is not None:
        raise WavegenError(f"tier 1 encodes audio, but {path} holds tier {below} codes")
    if tier > 1 and below != tier - 1:
        what = "audio" if below is None else f"tier {below} codes"
        raise WavegenError(f"tier {tier} encodes tier {tier - 1} codes, but {path} holds {what}")


def excerpt_batch(
    pieces: list[LevelPiece], *, seed: int, step: int, batch_size: int, segment: int
) -> torch.Tensor:
    """``batch_size`` random excerpts (batch, segment) of ``pieces``, zero past a
    piece's end (silence, or code 0). A piece is drawn with probability proportional
    to its length, then a start."""
    generator = step_generator(seed, step)
    lengths = torch.tensor([float(piece.length) for piece in pieces])
    picks = torch.multinomial(lengths, batch_size, replacement=True, generator=generator)
    batch = np.zeros((batch_size, segment), dtype=pieces[0].dtype)
    for row, index in enumerate(picks.tolist()):
        piece = pieces[index]
        first = int(torch.randint(max(piece.length - segment, 0) + 1, (1,), generator=generator))
        batch[row] = piece.read(first, segment)
    return torch.from_numpy(batch)


def pad_to_multiple(values: np.ndarray, multiple: int) -> np.ndarray:
    """``values`` zero-padded at the end to a multiple of ``multiple`` steps."""
    missing = -len(values) % multiple
    return np.concatenate([values, np.zeros(missing, dtype=values.dtype)]) if missing else values


def level_digest(path: str | os.PathLike[str]) -> str:
    """A SHA-256 of what a tier reads at ``path`` (the codes directory's files, or the
    prepared corpus's manifest): stored in the tier's checkpoint, so that a checkpoint
    trained on other data is never resumed from."""
    path = Path(path)
    names = (
        (MANIFEST_FILE, CODEBOOK_FILE, CODES_FILE)
        if (path / CODES_FILE).exists()
        else (MANIFEST_FILE,)
    )
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update((path / name).read_bytes())
    return digest.hexdigest()
