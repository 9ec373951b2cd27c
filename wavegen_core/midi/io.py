"""Reading MIDI with pretty_midi, turning every kind of breakage into one error type."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pretty_midi

from wavegen_core.files import atomic_path

MIDI_SUFFIXES = (".mid", ".midi")


class MidiReadError(ValueError):
    """A MIDI file is unreadable, truncated, or holds no notes; the message says which."""


def load_midi(path: str | os.PathLike[str], *, allow_empty: bool = False) -> pretty_midi.PrettyMIDI:
    """Read ``path``; raise :class:`MidiReadError` unless it holds at least one note (or,
    with ``allow_empty``, unless it is readable: a transcription of silence has none)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise MidiReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # pretty_midi warns about harmless things such as tempo events on
            # non-zero tracks; the checks below decide what is usable.
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido and pretty_midi raise many unrelated types
        raise MidiReadError(f"unreadable MIDI: {type(err).__name__}: {err}") from None
    if not allow_empty and not any(instrument.notes for instrument in midi.instruments):
        raise MidiReadError("the MIDI holds no notes")
    return midi


def write_midi(path: str | os.PathLike[str], midi: pretty_midi.PrettyMIDI) -> None:
    """Write ``midi`` atomically."""
    with atomic_path(path) as tmp:
        midi.write(str(tmp))


def note_count(midi: pretty_midi.PrettyMIDI) -> int:
    """Number of notes over all non-drum instruments."""
    return sum(len(instrument.notes) for instrument in midi.instruments if not instrument.is_drum)
