"""Where pieces come from: the bundled chorales, a MAESTRO directory, or any folder.

Each source turns its corpus into a stable, sorted list of :class:`SourceItem`; what
happens to an item (read, resample, render) is decided in :mod:`wavegen_core.data.prepare`.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from wavegen_core.audio.io import AUDIO_SUFFIXES
from wavegen_core.errors import WavegenError
from wavegen_core.midi.io import MIDI_SUFFIXES

MAESTRO_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SourceItem:
    """One piece to prepare.

    ``audio`` and ``midi`` are files to read; a chorale has neither and is performed
    from ``corpus_id``; a MIDI without audio is rendered; audio without MIDI joins the
    unlabelled pool. ``split`` is set when the corpus defines its own (MAESTRO).
    """

    piece_id: str
    source: str
    origin: str
    audio: Path | None = None
    midi: Path | None = None
    corpus_id: str | None = None
    split: str | None = None


class SourceError(WavegenError):
    """The corpus as a whole cannot be read (no metadata, nothing found)."""


def safe_id(text: str) -> str:
    """A file-name-safe piece id: path separators become ``__``, odd characters ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "__")).strip("_")


def bach_chorales() -> list[SourceItem]:
    from wavegen_core.midi.chorales import chorale_ids

    return [
        SourceItem(
            piece_id=safe_id(cid.removeprefix("bach/")),
            source="bach_chorales",
            origin=f"music21:{cid}",
            corpus_id=cid,
        )
        for cid in chorale_ids()
    ]


def _maestro_rows(root: Path) -> list[dict[str, str]]:
    """Rows of MAESTRO's metadata: the CSV of v2/v3, or the JSON (v2: records, v3: columns)."""
    csvs = sorted(root.glob("maestro-v*.csv"))
    if csvs:
        with open(csvs[-1], newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    jsons = sorted(root.glob("maestro-v*.json"))
    if not jsons:
        raise SourceError(f"{root} holds no MAESTRO metadata (maestro-v*.csv or maestro-v*.json)")
    data = json.loads(jsons[-1].read_text(encoding="utf-8"))
    if isinstance(data, list):
        return data
    columns = list(data)
    keys = list(data[columns[0]])
    return [{column: data[column][key] for column in columns} for key in keys]


def maestro(root: Path) -> list[SourceItem]:
    items = []
    for row in _maestro_rows(root):
        split = str(row.get("split", "")).strip()
        if split not in MAESTRO_SPLITS:
            raise SourceError(f"MAESTRO row {row} has split {split!r}; expected {MAESTRO_SPLITS}")
        audio = root / row["audio_filename"]
        items.append(
            SourceItem(
                piece_id=safe_id(Path(row["audio_filename"]).stem),
                source="maestro",
                origin=str(audio),
                audio=audio,
                midi=root / row["midi_filename"],
                split=split,
            )
        )
    return sorted(items, key=lambda item: item.piece_id)


# When several files share a stem (take.wav, take.flac, take.ogg), the first of each kind
# in this order is used and the others are listed as duplicates: lossless before lossy.
AUDIO_PREFERENCE = (".wav", ".flac", ".ogg")
MIDI_PREFERENCE = (".mid", ".midi")


@dataclass(frozen=True)
class Unused:
    """A path under a corpus root that no piece uses, and why."""

    path: Path
    reason: str


def _preference(path: Path, order: tuple[str, ...]) -> tuple[int, str]:
    suffix = path.suffix.lower()
    return (order.index(suffix) if suffix in order else len(order), path.name)


def folder_inventory(root: Path) -> tuple[list[SourceItem], list[Unused]]:
    """The pieces of a folder (audio with an optional same-named MIDI; MIDI alone is
    rendered) and every other path under it with the reason it is not used: a file of
    another kind, a duplicate by stem (see :data:`AUDIO_PREFERENCE`), a directory named
    like audio or MIDI, a link to nothing. Plain directories are walked, not listed."""
    by_stem: dict[Path, dict[str, list[Path]]] = {}
    unused: list[Unused] = []
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        kind = "audio" if suffix in AUDIO_SUFFIXES else "midi" if suffix in MIDI_SUFFIXES else None
        if path.is_dir():
            if kind is not None:
                unused.append(Unused(path, f"a directory named like {kind}, not a file"))
            continue
        if not path.is_file():
            what = "a link to nothing" if path.is_symlink() else "not a regular file"
            unused.append(Unused(path, what))
            continue
        if kind is None:
            unused.append(
                Unused(
                    path,
                    f"not audio ({', '.join(AUDIO_SUFFIXES)}) or MIDI ({', '.join(MIDI_SUFFIXES)})",
                )
            )
            continue
        by_stem.setdefault(path.with_suffix(""), {}).setdefault(kind, []).append(path)
    items = []
    for stem, found in sorted(by_stem.items()):
        chosen: dict[str, Path] = {}
        for kind, order in (("audio", AUDIO_PREFERENCE), ("midi", MIDI_PREFERENCE)):
            paths = sorted(found.get(kind, []), key=lambda p: _preference(p, order))
            if paths:
                chosen[kind] = paths[0]
                unused += [
                    Unused(
                        other,
                        f"duplicate of {paths[0].name} (same name; "
                        f"{'lossless before lossy: ' if kind == 'audio' else ''}"
                        f"{', '.join(order)} in that order)",
                    )
                    for other in paths[1:]
                ]
        audio, midi = chosen.get("audio"), chosen.get("midi")
        items.append(
            SourceItem(
                piece_id=safe_id(str(stem.relative_to(root))),
                source="folder",
                origin=str(audio or midi),
                audio=audio,
                midi=midi,
            )
        )
    return items, sorted(unused, key=lambda u: str(u.path))


def discover(source: str, root: str | Path) -> list[SourceItem]:
    """The items of ``source`` in a stable order."""
    return inventory(source, root)[0]


def inventory(source: str, root: str | Path) -> tuple[list[SourceItem], list[Unused]]:
    """The items of ``source`` in a stable order, and the paths under a folder root that
    no item uses (none for the chorales and MAESTRO, whose metadata names the files)."""
    if source == "bach_chorales":
        return bach_chorales(), []
    if source == "maestro":
        return maestro(Path(root)), []
    if source == "folder":
        return folder_inventory(Path(root))
    raise SourceError(f"unknown data.source {source!r}")
