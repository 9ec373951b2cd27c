"""The levels of the learnt hierarchy on disk: the corpus's audio, and each tier's codes.

Tier 1 reads the prepared corpus's audio; `encode@<k>` writes tier k's codes of every
piece to `data/codes/<k>/`, which is all that tier k + 1 reads (never tier k's
checkpoint). A codes directory holds:

* ``codes.npy``: every piece's codes in time order, one piece after another in the
  manifest's order (int16, or int32 for a codebook beyond int16), read memory-mapped;
* ``codebook.npy``: the (K, dim) float32 code vectors, the input of tier k + 1's encoder;
* ``manifest.json``: the tier's hop and rate, and each piece's id, split, length and
  offset (its first code's index in ``codes.npy``);
* ``metrics`` of its own are the stage's, under ``reports/encode/<k>/``.

Training excerpts are drawn like the vocoders' (:mod:`wavegen_core.data.pairs`): the
batch of step N depends only on (seed, N), so a resumed run equals an uninterrupted one.
Neither level is held in memory whole, so that memory does not grow with the corpus:
audio may be streamed (each piece's file read a range per excerpt, and whole, one piece
at a time, by `encode`), and codes are always memory-mapped, read as int64 per excerpt
or per piece. `encode` writes its codes piece by piece into the mapped file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavegen_core.audio.io import AudioFile, AudioReadError, load_audio, read_padded
from wavegen_core.data.manifest import read_manifest
from wavegen_core.errors import WavegenError
from wavegen_core.files import atomic_path, write_json
from wavegen_core.seeding import step_generator

CODES_FILE = "codes.npy"
# What `encode` wrote before codes were memory-mapped: one array per piece in an archive.
OLD_CODES_FILE = "codes.npz"
CODEBOOK_FILE = "codebook.npy"
MANIFEST_FILE = "manifest.json"
# Splits a tier learns from: the unlabelled pool has audio, which is all a VQ-VAE needs.
TRAINING_SPLITS = ("train", "unlabelled")
# Bytes hashed at a time by level_digest: a corpus's codes need not fit in memory.
DIGEST_CHUNK = 1 << 24


@dataclass(frozen=True)
class LevelPiece:
    """One piece at one level, in time order: audio (float32 samples, in memory or a
    file read per range) or codes (integers, in memory or memory-mapped), which every
    read returns as int64."""

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
        """What reads return: float32 for audio, int64 for codes."""
        if isinstance(self.values, AudioFile):
            return np.dtype(np.float32)
        return np.dtype(np.int64) if self.values.dtype.kind in "iu" else self.values.dtype

    def read(self, first: int, count: int) -> np.ndarray:
        """Steps ``first .. first + count - 1``, zero (silence, or code 0) past the end."""
        return read_padded(self.values, first, count, self.dtype)

    def whole(self) -> np.ndarray:
        """Every step of the piece, in memory."""
        if isinstance(self.values, AudioFile):
            return self.values.read(0, self.values.samples)
        return np.asarray(self.values, dtype=self.dtype)


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
    records: Sequence[dict[str, Any]],
    codes: Iterable[np.ndarray],
    codebook: np.ndarray,
    info: dict[str, Any],
) -> None:
    """Write a codes directory (see the module docstring) into ``directory``, which
    the caller swaps in whole (:func:`~wavegen_core.files.replace_dir`).

    ``records`` names each piece (``id``, ``split``, ``length``) in order; ``codes``
    yields each piece's codes in that order, one piece at a time, so that a corpus's
    codes are never all in memory. A piece whose codes are not ``length`` long is
    refused.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = np.int16 if codebook.shape[0] <= np.iinfo(np.int16).max else np.int32
    placed, offset = [], 0
    for record in records:
        placed.append(
            {
                "id": record["id"],
                "split": record["split"],
                "length": int(record["length"]),
                "offset": offset,
            }
        )
        offset += int(record["length"])
    with atomic_path(directory / CODES_FILE) as tmp:
        stored = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(offset,))
        pieces = iter(codes)
        for record in placed:
            values = np.asarray(next(pieces)).reshape(-1)
            if len(values) != record["length"]:
                raise ValueError(
                    f"piece {record['id']}: {len(values)} codes, but its record says "
                    f"{record['length']}"
                )
            stored[record["offset"] : record["offset"] + record["length"]] = values
        if next(pieces, None) is not None:
            raise ValueError(f"more code arrays than the {len(placed)} records")
        stored.flush()
        del stored
    with atomic_path(directory / CODEBOOK_FILE) as tmp, open(tmp, "wb") as handle:
        np.save(handle, codebook.astype(np.float32))
    write_json(directory / MANIFEST_FILE, {**info, "pieces": placed})


def read_codes(directory: str | os.PathLike[str]) -> Level:
    """A codes directory as :func:`write_codes` wrote it, its codes memory-mapped (each
    piece a view of ``codes.npy``; reads give int64)."""
    directory = Path(directory)
    if not (directory / CODES_FILE).exists() and (directory / OLD_CODES_FILE).exists():
        raise WavegenError(
            f"{directory} holds codes in the format before they were memory-mapped "
            f"({OLD_CODES_FILE}); run its encode stage again (dvc repro)"
        )
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    records = manifest.pop("pieces")
    codebook = np.load(directory / CODEBOOK_FILE)
    total = sum(int(r["length"]) for r in records)
    # An empty file cannot be mapped; nor does it need to be.
    stored = np.load(directory / CODES_FILE, mmap_mode="r" if total else None)
    pieces = [
        LevelPiece(r["id"], r["split"], stored[r["offset"] : r["offset"] + r["length"]])
        for r in records
    ]
    return Level(pieces, codebook, manifest)


def code_arrays(pieces: Sequence[LevelPiece]) -> list[np.ndarray]:
    """Each piece's codes as they are stored (memory-mapped by :func:`read_codes`), not
    read into memory: for a reader that takes windows of them itself."""
    arrays = []
    for piece in pieces:
        if isinstance(piece.values, AudioFile) or piece.values.dtype.kind not in "iu":
            raise TypeError(f"piece {piece.id} holds audio, not codes")
        arrays.append(piece.values)
    return arrays


def load_level(
    path: str | os.PathLike[str], sample_rate: int, stream: bool = False
) -> tuple[Level, list[dict[str, str]]]:
    """The level at ``path``: a codes directory, or else a prepared corpus's audio
    (streamed from its files with ``stream``)."""
    if is_codes_dir(path):
        return read_codes(path), []
    return load_audio_level(path, sample_rate, stream)


def is_codes_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a tier's codes (in this format or the one before)."""
    return any((Path(path) / name).exists() for name in (CODES_FILE, OLD_CODES_FILE))


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
        with open(path / name, "rb") as handle:
            while chunk := handle.read(DIGEST_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
