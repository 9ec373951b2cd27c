"""Performance events: MIDI notes as a token sequence, and back.

The representation of Oore et al. 2018 ("This time with feeling") that the Music
Transformer (Huang et al. 2019) is trained on. A performance is a stream of events:

* ``NOTE_ON(p)`` and ``NOTE_OFF(p)`` for each of the 128 MIDI pitches;
* ``TIME_SHIFT(n)``: move time forward by ``n`` steps of ``time_step`` seconds,
  ``1 <= n <= max_shift_steps`` (10 ms steps up to one second in the paper);
* ``VELOCITY(b)``: the velocity bin of the NOTE_ONs that follow (32 bins in the paper).

That makes 128 + 128 + 100 + 32 = 388 events at the paper's values. The token ids are
laid out as: 0 PAD, 1 START, 2 END, NOTE_ON 3..130, NOTE_OFF 131..258, then the
``max_shift_steps`` TIME_SHIFT ids, then the ``velocity_bins`` VELOCITY ids (391 in
all at the defaults). Encoding writes event tokens only; framing a sequence with
START and END is left to the caller.

Quantisation: a time ``t`` lands on step ``round(t / time_step)``, so every onset and
offset comes back to within half a step; a note lasts at least one step. At one step
the NOTE_OFFs come before the NOTE_ONs, so a key released and struck again at the same
instant stays two notes. A VELOCITY event is written only when the bin changes.

Same-pitch overlaps: a NOTE_OFF does not say which of several sounding notes of its
pitch it ends. Decoding ends the earliest-started one (first in, first out), which
returns staggered notes (A [0, 2] and B [1, 3]) exactly. A note nested inside a longer
one of the same pitch (A [0, 3], B [1, 2]) writes the same tokens as the staggered
case, in this vocabulary as in the paper's, so it decodes with the same onsets and the
same offsets per pitch, paired first in, first out: A [0, 2], B [1, 3].
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections import defaultdict, deque
from collections.abc import Sequence

import pretty_midi
from pydantic import Field

from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import MAX_VELOCITY, notes_to_midi
from wavegen_core.param_types import Strict


class EventsConfig(Strict):
    """The performance-event vocabulary of Oore et al. 2018 and the Music Transformer.

    NOTE_ON and NOTE_OFF for each of the 128 MIDI pitches, TIME_SHIFT by 1 to
    ``max_shift_steps`` steps of ``time_step`` seconds, and VELOCITY in
    ``velocity_bins`` bins: 128 + 128 + 100 + 32 = 388 events at the paper's values,
    plus PAD, START and END.
    """

    time_step: float = Field(0.01, gt=0.0, le=1.0)
    max_shift_steps: int = Field(100, gt=0, le=10000)
    velocity_bins: int = Field(32, ge=1, le=127)
    # Extend notes while the sustain pedal (CC 64 >= 64) is down, as the paper does.
    sustain: bool = True


PAD, START, END = 0, 1, 2
SPECIAL_NAMES = ("PAD", "START", "END")
PITCH_COUNT = 128

# The damper pedal is MIDI control change 64; values from 64 up mean "down"
# (MIDI 1.0 specification), the reading Oore et al. 2018 apply.
SUSTAIN_CONTROL = 64
PEDAL_DOWN_VALUE = 64

# The velocity a NOTE_ON gets when no VELOCITY event has come before it (a model's
# output may start without one): mezzo-forte, MIDI's usual default.
DEFAULT_VELOCITY = 64


class EventVocabulary:
    """Token ids for one :class:`EventsConfig`; the layout is in the module docstring."""

    def __init__(self, config: EventsConfig) -> None:
        self.config = config
        self._note_on_base = len(SPECIAL_NAMES)
        self._note_off_base = self._note_on_base + PITCH_COUNT
        self._time_shift_base = self._note_off_base + PITCH_COUNT
        self._velocity_base = self._time_shift_base + config.max_shift_steps
        self.size = self._velocity_base + config.velocity_bins

    def note_on(self, pitch: int) -> int:
        """The NOTE_ON token of MIDI ``pitch`` (0..127)."""
        _check_range("pitch", pitch, 0, PITCH_COUNT - 1)
        return self._note_on_base + pitch

    def note_off(self, pitch: int) -> int:
        """The NOTE_OFF token of MIDI ``pitch`` (0..127)."""
        _check_range("pitch", pitch, 0, PITCH_COUNT - 1)
        return self._note_off_base + pitch

    def time_shift(self, steps: int) -> int:
        """The TIME_SHIFT token that moves time forward by ``steps`` time steps."""
        _check_range("time shift steps", steps, 1, self.config.max_shift_steps)
        return self._time_shift_base + steps - 1

    def velocity(self, bin_index: int) -> int:
        """The VELOCITY token of velocity bin ``bin_index``."""
        _check_range("velocity bin", bin_index, 0, self.config.velocity_bins - 1)
        return self._velocity_base + bin_index

    def is_time_shift(self, token: int) -> bool:
        """Whether ``token`` is a TIME_SHIFT."""
        return self._time_shift_base <= token < self._velocity_base

    def shift_steps(self, token: int) -> int:
        """The number of time steps a TIME_SHIFT token moves by; 0 for any other token."""
        return token - self._time_shift_base + 1 if self.is_time_shift(token) else 0

    def describe(self, token: int) -> str:
        """A readable name: ``PAD``, ``NOTE_ON(60)``, ``TIME_SHIFT(12)``, ``VELOCITY(7)``..."""
        kind, value = self._split(token)
        return kind if kind in SPECIAL_NAMES else f"{kind}({value})"

    def velocity_bin(self, velocity: int) -> int:
        """The bin of a MIDI velocity: 1..127 cut into ``velocity_bins`` equal ranges.

        Velocities outside 1..127 are clamped first (0 would mean note-off in MIDI).
        """
        velocity = min(max(int(velocity), 1), MAX_VELOCITY)
        return (velocity - 1) * self.config.velocity_bins // MAX_VELOCITY

    def bin_velocity(self, bin_index: int) -> int:
        """The MIDI velocity in the middle of bin ``bin_index``: the inverse of velocity_bin."""
        bins = self.config.velocity_bins
        _check_range("velocity bin", bin_index, 0, bins - 1)
        # Bin b holds the velocities v with (v - 1) * bins // 127 == b, that is
        # v - 1 from ceil(b * 127 / bins) to ceil((b + 1) * 127 / bins) - 1.
        lowest = -(-bin_index * MAX_VELOCITY // bins) + 1
        highest = -(-(bin_index + 1) * MAX_VELOCITY // bins)
        return (lowest + highest) // 2

    def _split(self, token: int, position: int | None = None) -> tuple[str, int]:
        """(kind, value) of a token: the pitch, shift steps or velocity bin; 0 for specials."""
        if not 0 <= token < self.size:
            where = "" if position is None else f" at position {position}"
            raise ValueError(f"token {token}{where} is outside the vocabulary [0, {self.size})")
        if token < self._note_on_base:
            return SPECIAL_NAMES[token], 0
        if token < self._note_off_base:
            return "NOTE_ON", token - self._note_on_base
        if token < self._time_shift_base:
            return "NOTE_OFF", token - self._note_off_base
        if token < self._velocity_base:
            return "TIME_SHIFT", token - self._time_shift_base + 1
        return "VELOCITY", token - self._velocity_base


def _check_range(name: str, value: int, lowest: int, highest: int) -> None:
    if not lowest <= value <= highest:
        raise ValueError(f"{name} {value} is outside {lowest}..{highest}")


def _copy_note(note: pretty_midi.Note) -> pretty_midi.Note:
    return pretty_midi.Note(
        velocity=note.velocity, pitch=note.pitch, start=note.start, end=note.end
    )


def pedal_intervals(instrument: pretty_midi.Instrument) -> list[tuple[float, float]]:
    """(down, up) times of the sustain pedal, in order; a pedal left down ends with the part."""
    changes = sorted(
        (change for change in instrument.control_changes if change.number == SUSTAIN_CONTROL),
        key=lambda change: change.time,
    )
    intervals: list[tuple[float, float]] = []
    down_since: float | None = None
    for change in changes:
        if change.value >= PEDAL_DOWN_VALUE and down_since is None:
            down_since = change.time
        elif change.value < PEDAL_DOWN_VALUE and down_since is not None:
            intervals.append((down_since, change.time))
            down_since = None
    if down_since is not None:
        part_end = max(
            [note.end for note in instrument.notes] + [change.time for change in changes]
        )
        intervals.append((down_since, part_end))
    return intervals


def _sustained_notes(instrument: pretty_midi.Instrument) -> list[pretty_midi.Note]:
    """Copies of the part's notes with the sustain pedal applied, as Oore et al. 2018 do.

    A note released while the pedal is down sounds on until the pedal comes up, unless
    its key is struck again first: the new onset ends it. A note whose key is still held
    at the new onset is left alone, as the pedal plays no part in that overlap.
    """
    notes = [_copy_note(note) for note in instrument.notes]
    intervals = pedal_intervals(instrument)
    if not intervals:
        return notes
    downs = [down for down, _ in intervals]
    onsets_of_pitch: dict[int, list[float]] = defaultdict(list)
    for note in notes:
        onsets_of_pitch[note.pitch].append(note.start)
    for onsets in onsets_of_pitch.values():
        onsets.sort()
    for note in notes:
        release = max(note.end, note.start)
        index = bisect_right(downs, release) - 1
        if index < 0 or release >= intervals[index][1]:
            continue  # released while the pedal was up
        onsets = onsets_of_pitch[note.pitch]
        # The first later onset of this key at or after the release ends the sustain.
        restrike = bisect_left(onsets, release, lo=bisect_right(onsets, note.start))
        pedal_up = intervals[index][1]
        note.end = min(pedal_up, onsets[restrike]) if restrike < len(onsets) else pedal_up
    return notes


def performance_notes(midi: pretty_midi.PrettyMIDI, sustain: bool = True) -> list[pretty_midi.Note]:
    """New notes of every non-drum instrument, merged and sorted by (start, pitch).

    With ``sustain`` each instrument's sustain pedal lengthens its own notes, as
    :func:`_sustained_notes` describes; the input is never changed.
    """
    notes: list[pretty_midi.Note] = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        if sustain:
            notes.extend(_sustained_notes(instrument))
        else:
            notes.extend(_copy_note(note) for note in instrument.notes)
    return sorted(notes, key=lambda note: (note.start, note.pitch))


def _step_of(seconds: float, time_step: float) -> int:
    return int(round(seconds / time_step))


def _time_shift_tokens(steps: int, vocab: EventVocabulary) -> list[int]:
    """TIME_SHIFT tokens covering ``steps``: as many full shifts as fit, then the rest."""
    tokens: list[int] = []
    while steps > 0:
        shift = min(steps, vocab.config.max_shift_steps)
        tokens.append(vocab.time_shift(shift))
        steps -= shift
    return tokens


# Order of the events that fall on one time step: releases before onsets.
_OFF, _ON = 0, 1


def encode_notes(notes: Sequence[pretty_midi.Note], vocab: EventVocabulary) -> list[int]:
    """Event tokens (no START or END) of ``notes``; see the module docstring.

    Onsets before time 0 are moved to 0. Notes of one pitch that start on the same step
    are written shortest first, so that first-in first-out decoding pairs each with its
    own offset and velocity.
    """
    time_step = vocab.config.time_step
    # (step, _OFF or _ON, pitch, end step of an onset, velocity bin of an onset)
    events: list[tuple[int, int, int, int, int]] = []
    for note in notes:
        start = max(0, _step_of(note.start, time_step))
        end = max(_step_of(note.end, time_step), start + 1)
        events.append((start, _ON, note.pitch, end, vocab.velocity_bin(note.velocity)))
        events.append((end, _OFF, note.pitch, 0, 0))
    events.sort()

    tokens: list[int] = []
    current_step = 0
    current_bin: int | None = None
    for step, kind, pitch, _, velocity_bin in events:
        tokens.extend(_time_shift_tokens(step - current_step, vocab))
        current_step = step
        if kind == _OFF:
            tokens.append(vocab.note_off(pitch))
            continue
        if velocity_bin != current_bin:
            tokens.append(vocab.velocity(velocity_bin))
            current_bin = velocity_bin
        tokens.append(vocab.note_on(pitch))
    return tokens


def encode_midi(midi: pretty_midi.PrettyMIDI, vocab: EventVocabulary) -> list[int]:
    """Event tokens of a whole MIDI, with the pedal applied when ``vocab.config.sustain``."""
    return encode_notes(performance_notes(midi, vocab.config.sustain), vocab)


def encode_file(path: str | os.PathLike[str], vocab: EventVocabulary) -> list[int]:
    """Event tokens of a MIDI file; :class:`MidiReadError` if it is unreadable or empty."""
    return encode_midi(load_midi(path), vocab)


def decode_events(tokens: Sequence[int], vocab: EventVocabulary) -> list[pretty_midi.Note]:
    """Notes of a token sequence, sorted by (start, pitch).

    PAD and START are skipped and the first END stops decoding (what follows it is not
    read). A NOTE_OFF ends the earliest-started sounding note of its pitch and is
    ignored when none sounds. Every note lasts at least one step, and notes still
    sounding at the end stop at the final time. A NOTE_ON before any VELOCITY event
    gets the bin of :data:`DEFAULT_VELOCITY`. A token outside the vocabulary raises
    ValueError naming it and its position.
    """
    step = 0
    velocity = vocab.bin_velocity(vocab.velocity_bin(DEFAULT_VELOCITY))
    onsets: list[tuple[int, int, int]] = []  # (start step, pitch, velocity), in stream order
    ends: list[int | None] = []  # end step of each onset, None while it sounds
    sounding: dict[int, deque[int]] = defaultdict(deque)  # pitch -> indices into onsets
    for position, token in enumerate(tokens):
        kind, value = vocab._split(int(token), position)
        if kind == "END":
            break
        if kind == "NOTE_ON":
            sounding[value].append(len(onsets))
            onsets.append((step, value, velocity))
            ends.append(None)
        elif kind == "NOTE_OFF" and sounding[value]:
            ends[sounding[value].popleft()] = step
        elif kind == "TIME_SHIFT":
            step += value
        elif kind == "VELOCITY":
            velocity = vocab.bin_velocity(value)

    time_step = vocab.config.time_step
    notes = [
        pretty_midi.Note(
            velocity=note_velocity,
            pitch=pitch,
            start=start * time_step,
            end=max(step if end is None else end, start + 1) * time_step,
        )
        for (start, pitch, note_velocity), end in zip(onsets, ends, strict=True)
    ]
    # A stable sort: notes of one pitch and onset keep their order in the stream.
    return sorted(notes, key=lambda note: (note.start, note.pitch))


def events_to_midi(
    tokens: Sequence[int], vocab: EventVocabulary, program: int = 0
) -> pretty_midi.PrettyMIDI:
    """A one-instrument MIDI (General MIDI ``program``) of the decoded tokens."""
    return notes_to_midi(decode_events(tokens, vocab), program)


def events_seconds(tokens: Sequence[int], vocab: EventVocabulary) -> float:
    """Seconds covered by the TIME_SHIFT tokens, up to the first END, as decoding reads them."""
    steps = 0
    for position, token in enumerate(tokens):
        kind, value = vocab._split(int(token), position)
        if kind == "END":
            break
        if kind == "TIME_SHIFT":
            steps += value
    return steps * vocab.config.time_step


def augment_notes(
    notes: Sequence[pretty_midi.Note], semitones: int, stretch: float
) -> list[pretty_midi.Note]:
    """New notes transposed by ``semitones`` and with times scaled by ``stretch``.

    The data augmentation of Huang et al. 2019 (section 6.2). Notes transposed out of
    the MIDI range 0..127 are dropped.
    """
    if stretch <= 0:
        raise ValueError(f"stretch must be positive, got {stretch}")
    return [
        pretty_midi.Note(
            velocity=note.velocity,
            pitch=note.pitch + semitones,
            start=note.start * stretch,
            end=note.end * stretch,
        )
        for note in notes
        if 0 <= note.pitch + semitones < PITCH_COUNT
    ]
