"""The Bach chorales bundled with music21, as humanised piano performances.

The chorales are the default corpus because they need no download: music21's wheel
ships them. Each becomes one piano track at a fixed tempo, with seeded per-note
velocities and onset jitter so that a transcriber sees dynamics and imperfect timing.
"""

from __future__ import annotations

import zlib

import numpy as np
import pretty_midi
from pydantic import Field

from wavegen_core.param_types import Seconds, Strict


class ChoralesConfig(Strict):
    """How the bundled Bach chorales become piano MIDI."""

    # The chorales carry no tempo; at 120 bpm the 350 files last about 2.8 h.
    tempo_bpm: float = Field(100.0, gt=0.0, le=400.0)
    # Seeded humanisation: a MIDI velocity per note from N(mean, std), clipped to 1..127,
    # plus Gaussian onset jitter, so the transcriber sees dynamics and imperfect timing.
    velocity_mean: float = Field(72.0, ge=1.0, le=127.0)
    velocity_std: float = Field(12.0, ge=0.0, le=64.0)
    onset_jitter: Seconds = Field(0.008, le=0.1)
    # General MIDI program the chorales are played on; 0 is the acoustic grand piano.
    program: int = Field(0, ge=0, le=127)


# Shortest note kept after jitter, in seconds, so no note collapses to nothing.
MIN_NOTE_SECONDS = 0.02


def chorale_ids() -> list[str]:
    """music21's chorale corpus ids (``bach/bwv269``, ...) in its catalogue order, unique."""
    from music21 import corpus

    ids = corpus.chorales.Iterator(returnType="filename")
    return list(dict.fromkeys(str(name) for name in ids))


def piece_rng(seed: int, piece_id: str) -> np.random.Generator:
    """A generator that depends only on the global seed and the piece, not on worker order."""
    return np.random.default_rng([seed, zlib.crc32(piece_id.encode())])


def _score_notes(corpus_id: str) -> list[tuple[float, float, int]]:
    """(onset, duration, pitch) in quarter notes for every sounding note of the chorale."""
    from music21 import corpus

    score = corpus.parse(corpus_id).stripTies()
    notes: list[tuple[float, float, int]] = []
    for element in score.flatten().notes:
        duration = float(element.quarterLength)
        if duration <= 0:  # grace notes carry no duration
            continue
        onset = float(element.offset)
        notes.extend((onset, duration, int(pitch.midi)) for pitch in element.pitches)
    return notes


def _merge_unisons(notes: list[pretty_midi.Note]) -> list[pretty_midi.Note]:
    """Merge overlapping notes of one pitch: two voices in unison are one piano key."""
    merged: list[pretty_midi.Note] = []
    last_of_pitch: dict[int, pretty_midi.Note] = {}
    for note in sorted(notes, key=lambda n: (n.start, n.pitch)):
        previous = last_of_pitch.get(note.pitch)
        if previous is not None and note.start < previous.end:
            previous.end = max(previous.end, note.end)
            previous.velocity = max(previous.velocity, note.velocity)
            continue
        merged.append(note)
        last_of_pitch[note.pitch] = note
    return merged


def chorale_to_midi(corpus_id: str, config: ChoralesConfig, seed: int) -> pretty_midi.PrettyMIDI:
    """Parse one chorale and perform it on a single piano track."""
    seconds_per_quarter = 60.0 / config.tempo_bpm
    rng = piece_rng(seed, corpus_id)
    notes: list[tuple[float, float, int]] = []
    for onset, duration, pitch in _score_notes(corpus_id):
        velocity = int(
            np.clip(round(rng.normal(config.velocity_mean, config.velocity_std)), 1, 127)
        )
        shift = rng.normal(0.0, config.onset_jitter) if config.onset_jitter > 0 else 0.0
        start = max(0.0, onset * seconds_per_quarter + shift)
        end = max(start + MIN_NOTE_SECONDS, (onset + duration) * seconds_per_quarter + shift)
        notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))
    if not notes:
        raise ValueError(f"chorale {corpus_id} has no notes")
    midi = pretty_midi.PrettyMIDI(initial_tempo=config.tempo_bpm)
    piano = pretty_midi.Instrument(program=config.program, name="piano")
    piano.notes = _merge_unisons(notes)
    midi.instruments.append(piano)
    return midi


def first_seconds(midi: pretty_midi.PrettyMIDI, seconds: float) -> pretty_midi.PrettyMIDI:
    """``midi`` cut to its first ``seconds`` (in place): later notes dropped, held ones
    ended at the cut."""
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < seconds]
        for note in instrument.notes:
            note.end = min(note.end, seconds)
        instrument.control_changes = [c for c in instrument.control_changes if c.time < seconds]
    return midi
