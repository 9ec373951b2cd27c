"""Seeded, procedurally written piano material: what four-voice chorales never play.

A transcriber trained on chorales only sees MIDI 36-86 in four-voice homophony. These
etudes fill the gaps in texture and range: each piece is a chain of sections, each a
figure of piano writing in a random key, register and tempo:

* ``scale``: scale runs over one to four octaves, up and down, in one hand or two
  (an octave or a tenth apart);
* ``arpeggio``: broken chords climbing and falling across the keyboard;
* ``alberti``: an Alberti bass (low-high-middle-high) under a slow melody;
* ``octaves``: a line in octaves, both hands;
* ``repeated``: one note or a dyad struck again and again, fast;
* ``trill``: two neighbouring notes alternating fast, over a held note;
* ``chords``: dense, wide chords (five to ten notes over up to four octaves);
* ``pedalled``: fast figuration over held bass notes, with the sustain pedal changed at
  each bass note.

Everything is drawn from a generator seeded by (seed, piece index), so a piece is the
same whatever else is generated. Notes stay within MIDI 21-108; registers are drawn
over the whole keyboard, so the material spans it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pretty_midi

from wavegen_core.midi.chorales import piece_rng
from wavegen_core.midi.events import SUSTAIN_CONTROL

LOWEST_PITCH, HIGHEST_PITCH = 21, 108
# Scale steps (semitones from the tonic) of the modes the figures are written in.
MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 11),
}
# Chord shapes (semitones from the root) for arpeggios, Alberti basses and chords.
CHORDS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 10), (0, 3, 7, 10), (0, 3, 6), (0, 4, 7, 11))


@dataclass
class _Section:
    """The notes and pedal changes written so far, and the time the next figure starts."""

    notes: list[pretty_midi.Note] = field(default_factory=list)
    pedal: list[pretty_midi.ControlChange] = field(default_factory=list)

    def note(self, pitch: int, start: float, end: float, velocity: float) -> None:
        if LOWEST_PITCH <= pitch <= HIGHEST_PITCH and end > start:
            level = int(np.clip(round(velocity), 1, 127))
            self.notes.append(pretty_midi.Note(level, int(pitch), start, end))


def _scale_pitches(tonic: int, mode: str, low: int, high: int) -> list[int]:
    """Every pitch of the scale on ``tonic`` (a pitch class) from ``low`` to ``high``."""
    steps = {(tonic + step) % 12 for step in MODES[mode]}
    return [p for p in range(low, high + 1) if p % 12 in steps]


def _velocity(rng: np.random.Generator, base: float) -> float:
    return base + rng.normal(0.0, 6.0)


def _scale(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    tonic, mode = int(rng.integers(12)), str(rng.choice(list(MODES)))
    octaves = int(rng.integers(1, 5))
    low = int(rng.integers(LOWEST_PITCH, HIGHEST_PITCH - 12 * octaves + 1))
    run = _scale_pitches(tonic, mode, low, low + 12 * octaves)
    path = run + run[-2::-1]
    step = beat / int(rng.choice([2, 3, 4]))
    second = int(rng.choice([0, 12, 15, 16]))  # one hand, or an octave or a tenth below
    base = rng.uniform(45, 100)
    for index, pitch in enumerate(path):
        t = start + index * step
        out.note(pitch, t, t + step * 0.95, _velocity(rng, base))
        if second:
            out.note(pitch - second, t, t + step * 0.95, _velocity(rng, base - 8))
    return start + len(path) * step


def _arpeggio(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    root = int(rng.integers(LOWEST_PITCH, 60))
    shape = CHORDS[int(rng.integers(len(CHORDS)))]
    top = int(rng.integers(root + 24, min(root + 60, HIGHEST_PITCH) + 1))
    up = [root + 12 * octave + s for octave in range(6) for s in shape]
    up = [p for p in up if p <= top]
    path = up + up[-2::-1]
    step = beat / int(rng.choice([3, 4, 6]))
    base = rng.uniform(45, 95)
    end = start + len(path) * step
    for index, pitch in enumerate(path):
        t = start + index * step
        out.note(pitch, t, min(t + step * 1.5, end), _velocity(rng, base))  # notes overlap
    return end


def _alberti(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    tonic, mode = int(rng.integers(12)), str(rng.choice(list(MODES)))
    bass = int(rng.integers(33, 60))
    melody = _scale_pitches(tonic, mode, bass + 12, min(bass + 40, HIGHEST_PITCH))
    bars, step = int(rng.integers(2, 5)), beat / 4
    t = start
    base = rng.uniform(40, 80)
    for _ in range(bars):
        shape = CHORDS[int(rng.integers(2))]
        low, middle, high = bass + shape[0], bass + shape[1], bass + shape[2]
        for _ in range(4):  # one bar of four beats, a melody note on each
            for pitch in (low, high, middle, high):
                out.note(pitch, t, t + step, _velocity(rng, base))
                t += step
            tune = melody[int(rng.integers(len(melody)))]
            out.note(tune, t - beat, t, _velocity(rng, base + 15))
    return t


def _octaves(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    tonic, mode = int(rng.integers(12)), str(rng.choice(list(MODES)))
    low = int(rng.integers(LOWEST_PITCH, 84))
    line = _scale_pitches(tonic, mode, low, min(low + 24, HIGHEST_PITCH))
    count, step = int(rng.integers(8, 24)), beat / int(rng.choice([1, 2, 4]))
    base, index = rng.uniform(55, 110), int(rng.integers(len(line)))
    t = start
    for _ in range(count):
        index = int(np.clip(index + rng.integers(-2, 3), 0, len(line) - 1))
        for pitch in (line[index], line[index] + 12):
            out.note(pitch, t, t + step * 0.9, _velocity(rng, base))
        t += step
    return t


def _repeated(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    pitch = int(rng.integers(LOWEST_PITCH, HIGHEST_PITCH + 1))
    dyad = pitch + int(rng.choice([0, 3, 4, 7, 12]))
    count, step = int(rng.integers(6, 20)), beat / int(rng.choice([2, 4, 6]))
    base = rng.uniform(40, 100)
    for index in range(count):
        t = start + index * step
        for p in {pitch, dyad}:
            out.note(p, t, t + step * 0.6, _velocity(rng, base))
    return start + count * step


def _trill(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    pitch = int(rng.integers(40, HIGHEST_PITCH))
    other = pitch + int(rng.choice([1, 2]))
    count, step = int(rng.integers(12, 32)), beat / int(rng.choice([6, 8]))
    base = rng.uniform(40, 90)
    held = pitch - int(rng.choice([12, 16, 19, 24]))
    out.note(held, start, start + count * step, _velocity(rng, base))
    for index in range(count):
        t = start + index * step
        out.note(pitch if index % 2 == 0 else other, t, t + step, _velocity(rng, base - 5))
    return start + count * step


def _chords(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    t = start
    for _ in range(int(rng.integers(3, 8))):
        root = int(rng.integers(LOWEST_PITCH, 72))
        shape = CHORDS[int(rng.integers(len(CHORDS)))]
        span = int(rng.integers(2, 5))
        pitches = sorted({root + 12 * o + s for o in range(span) for s in shape})
        count = min(len(pitches), int(rng.integers(5, 11)))
        chosen = rng.choice(pitches, size=count, replace=False)
        length = beat * float(rng.choice([0.5, 1.0, 2.0]))
        base = rng.uniform(50, 115)
        for pitch in chosen:
            out.note(int(pitch), t, t + length * 0.95, _velocity(rng, base))
        t += length
    return t


def _pedalled(out: _Section, rng: np.random.Generator, start: float, beat: float) -> float:
    t = start
    step = beat / int(rng.choice([4, 6]))
    for _ in range(int(rng.integers(2, 5))):
        bass = int(rng.integers(LOWEST_PITCH, 52))
        shape = CHORDS[int(rng.integers(len(CHORDS)))]
        figure = [bass + 12 * o + s for o in (1, 2, 3) for s in shape]
        figure = [p for p in figure if p <= HIGHEST_PITCH] or [bass + 12]
        length = len(figure) * step
        # The pedal comes up just before the new bass and goes down just after it.
        out.pedal.append(pretty_midi.ControlChange(SUSTAIN_CONTROL, 0, max(t - 0.01, 0.0)))
        out.pedal.append(pretty_midi.ControlChange(SUSTAIN_CONTROL, 127, t + 0.03))
        base = rng.uniform(45, 90)
        out.note(bass, t, t + step * 2, _velocity(rng, base + 10))
        for index, pitch in enumerate(figure):
            onset = t + index * step
            out.note(pitch, onset, onset + step * 0.8, _velocity(rng, base))
        t += length
    out.pedal.append(pretty_midi.ControlChange(SUSTAIN_CONTROL, 0, t + 0.2))
    return t + 0.2


FIGURES: dict[str, Callable[[_Section, np.random.Generator, float, float], float]] = {
    "scale": _scale,
    "arpeggio": _arpeggio,
    "alberti": _alberti,
    "octaves": _octaves,
    "repeated": _repeated,
    "trill": _trill,
    "chords": _chords,
    "pedalled": _pedalled,
}

TEXTURES = tuple(FIGURES)


def etude_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of etude ``index``: it depends only on the seed and the index."""
    return piece_rng(seed, f"etude-{index}")


def etude(
    seed: int, index: int, seconds: float, tempo_range: tuple[float, float] = (60.0, 160.0)
) -> pretty_midi.PrettyMIDI:
    """Etude ``index`` of ``seed``: figures of every texture in a seeded order, each in its
    own key, register and tempo (a beat of 60 / bpm seconds, bpm uniform in
    ``tempo_range``), until ``seconds`` are filled; a short rest follows each figure."""
    rng = etude_rng(seed, index)
    out = _Section()
    t = 0.0
    order: list[str] = []
    while t < seconds:
        if not order:
            order = [str(name) for name in rng.permutation(TEXTURES)]
        beat = 60.0 / rng.uniform(*tempo_range)
        t = FIGURES[order.pop()](out, rng, t, beat) + float(rng.uniform(0.1, 0.6))
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="etude")
    piano.notes = sorted(out.notes, key=lambda n: (n.start, n.pitch))
    piano.control_changes = sorted(out.pedal, key=lambda c: c.time)
    midi.instruments.append(piano)
    return midi
