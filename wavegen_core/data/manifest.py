"""The manifest of a prepared corpus: one record per piece, read by every later stage."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wavegen_core.files import write_json

SPLITS = ("train", "validation", "test", "unlabelled")
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Piece:
    """One prepared piece. Paths are relative to the corpus directory."""

    id: str
    audio: str
    midi: str | None
    duration: float
    split: str
    source: str
    has_midi: bool
    notes: int
    origin: str
    # How an extra rendering was made (its soundfont, transposition, tempo, synthesis);
    # None for a piece as the corpus gives it. Left out of the manifest when None.
    rendering: dict[str, Any] | None = None


def _record(piece: Piece) -> dict[str, Any]:
    record = asdict(piece)
    if record["rendering"] is None:
        del record["rendering"]
    return record


def write_manifest(directory: str | os.PathLike[str], pieces: list[Piece], **about: str) -> Path:
    """Write the manifest; ``about`` adds top-level fields (e.g. ``transcriber="model"``)."""
    path = Path(directory) / MANIFEST_NAME
    records = [_record(piece) for piece in sorted(pieces, key=lambda p: p.id)]
    write_json(path, {**about, "pieces": records})
    return path


def read_manifest(directory: str | os.PathLike[str]) -> list[Piece]:
    """The pieces of a prepared corpus directory."""
    payload = json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))
    return [Piece(**record) for record in payload["pieces"]]


def midi_files(
    directory: str | os.PathLike[str], splits: tuple[str, ...]
) -> list[tuple[str, Path]]:
    """``(piece, MIDI path)`` of a corpus's pieces in ``splits`` that have MIDI."""
    root = Path(directory)
    return [
        (p.id, root / p.midi)
        for p in read_manifest(root)
        if p.split in splits and p.has_midi and p.midi
    ]
