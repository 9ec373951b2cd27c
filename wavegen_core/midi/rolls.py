"""Piano rolls: MIDI notes to frame-wise targets for the 88 keys, and back to notes.

The frame grid is that of the log-mel front end (``wavegen_core.audio.mel``): frame
``i`` stands for time ``i / frames_per_second``. A note from ``start`` to ``end``
seconds covers frames ``round(start * fps)`` up to, not including,
``round(end * fps)``, so that decoding the targets gives back every onset and offset
to within half a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi
from pydantic import Field

from wavegen_core.param_types import Probability, Seconds, Strict


class NoteDecodingConfig(Strict):
    """How frame-wise probabilities become notes (Hawthorne et al. 2018, section 3).

    A note starts only where the onset head fires, and lasts while the frame head
    stays on; the paper thresholds both at 0.5.
    """

    onset_threshold: Probability = 0.5
    frame_threshold: Probability = 0.5
    # Notes shorter than this are dropped as spurious; 0 keeps every note.
    min_note_seconds: Seconds = Field(0.0, le=10.0)
    # The onset activation that re-strikes a key whose note is still sounding; null is
    # the onset threshold. Above it, weak onsets inside a held note (partials of other
    # notes, the piano's own decay) do not split it into a train of short notes.
    restrike_threshold: Probability | None = None


# The 88 keys of the piano, A0 (MIDI 21) to C8 (MIDI 108).
LOWEST_KEY = 21
KEY_COUNT = 88
MAX_VELOCITY = 127
TARGET_NAMES = ("onsets", "offsets", "frames", "velocity")


def _frame_of(seconds: float, frames_per_second: float) -> int:
    return int(round(seconds * frames_per_second))


def piano_notes(midi: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    """The notes of every non-drum instrument that fall on the 88 keys, by start time."""
    notes = [
        note
        for instrument in midi.instruments
        if not instrument.is_drum
        for note in instrument.notes
        if LOWEST_KEY <= note.pitch < LOWEST_KEY + KEY_COUNT
    ]
    return sorted(notes, key=lambda note: (note.start, note.pitch))


def midi_to_targets(
    midi: pretty_midi.PrettyMIDI, n_frames: int, frames_per_second: float
) -> dict[str, np.ndarray]:
    """Frame targets of shape (n_frames, 88), float32, keyed by :data:`TARGET_NAMES`.

    ``onsets`` and ``offsets`` mark the single frame where a note starts or ends (one
    32 ms frame at the frame rate of Hawthorne et al. 2018, section 3); ``frames``
    is 1 while a key sounds; ``velocity`` is velocity / 127 at onset frames and 0
    elsewhere. Notes last at least one frame; parts beyond ``n_frames`` are cut.
    """
    return NoteTable.from_midi(midi, frames_per_second, n_frames).window(0, n_frames)


@dataclass(frozen=True)
class NoteTable:
    """A piece's notes on the frame grid, from which the targets of any window are built.

    Rows are in :func:`piano_notes` order (later notes overwrite earlier ones where they
    meet, as in the whole-piece targets); ``total`` is the piece's frame count. A few
    numbers per note, so a corpus's labels fit in memory however long its audio.
    """

    keys: np.ndarray  # int, 0..87
    onsets: np.ndarray  # int, frame
    offsets: np.ndarray  # int, frame, at least onset + 1
    velocities: np.ndarray  # float32, velocity / 127
    total: int

    @classmethod
    def from_midi(
        cls, midi: pretty_midi.PrettyMIDI, frames_per_second: float, total: int
    ) -> NoteTable:
        notes = piano_notes(midi)
        onsets = [_frame_of(note.start, frames_per_second) for note in notes]
        offsets = [
            max(_frame_of(note.end, frames_per_second), onset + 1)
            for note, onset in zip(notes, onsets, strict=True)
        ]
        return cls(
            keys=np.array([note.pitch - LOWEST_KEY for note in notes], dtype=np.int64),
            onsets=np.array(onsets, dtype=np.int64),
            offsets=np.array(offsets, dtype=np.int64),
            velocities=np.array([note.velocity / MAX_VELOCITY for note in notes], np.float32),
            total=total,
        )

    def window(self, first: int, n_frames: int) -> dict[str, np.ndarray]:
        """The targets of frames ``first .. first + n_frames - 1``: the rows of the whole
        piece's targets there, zero past its end."""
        targets = {name: np.zeros((n_frames, KEY_COUNT), dtype=np.float32) for name in TARGET_NAMES}
        end = min(first + n_frames, self.total)
        # Notes that start in the piece and touch the window (their offset frame included).
        touching = (self.onsets < self.total) & (self.onsets < end) & (self.offsets >= first)
        for index in np.flatnonzero(touching):
            key, onset, offset = self.keys[index], self.onsets[index], self.offsets[index]
            low, high = max(onset, first), min(offset, end)
            if low < high:
                targets["frames"][low - first : high - first, key] = 1.0
            if first <= onset < end:
                targets["onsets"][onset - first, key] = 1.0
                targets["velocity"][onset - first, key] = self.velocities[index]
            if first <= offset < end:
                targets["offsets"][offset - first, key] = 1.0
        return targets


def _note(
    key: int, start: int, end: int, velocity: float, frames_per_second: float
) -> pretty_midi.Note:
    midi_velocity = int(round(float(np.clip(velocity, 0.0, 1.0)) * MAX_VELOCITY))
    return pretty_midi.Note(
        # Velocity 0 means note-off in MIDI, so the quietest note is 1.
        velocity=max(1, midi_velocity),
        pitch=key + LOWEST_KEY,
        start=start / frames_per_second,
        end=end / frames_per_second,
    )


class NoteDecoder:
    """Notes from frame-wise onset/frame probabilities, fed in consecutive blocks.

    The decoding of Hawthorne et al. 2018, section 3: only the onset head may start a
    note, the frame head sustains it. A note starts on a rising edge of the onset
    activation and lasts while the frame or the onset activation stays on; a new
    rising edge while it lasts ends it and starts the next (a re-struck key), if the
    onset activation reaches ``config.restrike_threshold`` there. A note's velocity is
    the velocity head's value (a fraction of 127) at its onset frame; notes shorter
    than ``config.min_note_seconds`` are dropped.

    Its state is one open note per key, so a long recording can be decoded block by
    block in memory bounded by the block (see ``transcribe_stream``).
    """

    def __init__(self, config: NoteDecodingConfig, frames_per_second: float) -> None:
        self.config = config
        self.frames_per_second = frames_per_second
        self._min_frames = config.min_note_seconds * frames_per_second
        self._frame = 0  # index of the next frame to be fed
        self._restrike = (
            config.onset_threshold
            if config.restrike_threshold is None
            else max(config.onset_threshold, config.restrike_threshold)
        )
        self._onset_was_on = np.zeros(KEY_COUNT, dtype=bool)
        self._strike_was_on = np.zeros(KEY_COUNT, dtype=bool)
        self._sounding_was = np.zeros(KEY_COUNT, dtype=bool)
        self._start = np.full(KEY_COUNT, -1)  # open note's first frame, -1 when none
        self._velocity = np.zeros(KEY_COUNT, dtype=np.float32)
        self._notes: list[pretty_midi.Note] = []

    def _close(self, keys: np.ndarray, end: int) -> None:
        for key in keys:
            if end - self._start[key] >= self._min_frames:
                self._notes.append(
                    _note(
                        int(key),
                        int(self._start[key]),
                        end,
                        self._velocity[key],
                        self.frames_per_second,
                    )
                )
            self._start[key] = -1

    def feed(self, onset_probs: np.ndarray, frame_probs: np.ndarray, velocity: np.ndarray) -> None:
        """The next (n_frames, 88) block of probabilities and velocity predictions."""
        onset_probs = np.asarray(onset_probs)
        onset_on = onset_probs >= self.config.onset_threshold
        strike_on = onset_probs >= self._restrike
        sounding = onset_on | (np.asarray(frame_probs) >= self.config.frame_threshold)
        rising = onset_on & ~np.concatenate((self._onset_was_on[None], onset_on[:-1]))
        restrike = strike_on & ~np.concatenate((self._strike_was_on[None], strike_on[:-1]))
        falling = ~sounding & np.concatenate((self._sounding_was[None], sounding[:-1]))
        # A note ends only on a re-strike or where its key stops sounding, so only the
        # frames with a rising onset or a falling sound edge can change anything.
        for row in np.flatnonzero((rising | restrike | falling).any(axis=1)):
            frame = self._frame + int(row)
            open_keys = self._start >= 0
            ending = np.flatnonzero(open_keys & (restrike[row] | ~sounding[row]))
            self._close(ending, frame)
            starting = np.flatnonzero(np.where(open_keys, restrike[row], rising[row]))
            self._start[starting] = frame
            self._velocity[starting] = velocity[row, starting]
        if len(onset_on):
            self._onset_was_on = onset_on[-1].copy()
            self._strike_was_on = strike_on[-1].copy()
            self._sounding_was = sounding[-1].copy()
        self._frame += len(onset_on)

    def finish(self) -> list[pretty_midi.Note]:
        """Close the notes still sounding at the end; all notes by start time, then pitch."""
        self._close(np.flatnonzero(self._start >= 0), self._frame)
        return sorted(self._notes, key=lambda note: (note.start, note.pitch))


def decode_notes(
    onset_probs: np.ndarray,
    frame_probs: np.ndarray,
    velocity: np.ndarray,
    config: NoteDecodingConfig,
    frames_per_second: float,
) -> list[pretty_midi.Note]:
    """Notes from whole (n_frames, 88) arrays; see :class:`NoteDecoder`."""
    decoder = NoteDecoder(config, frames_per_second)
    decoder.feed(onset_probs, frame_probs, velocity)
    return decoder.finish()


def notes_to_midi(notes: list[pretty_midi.Note], program: int = 0) -> pretty_midi.PrettyMIDI:
    """A one-instrument MIDI (General MIDI ``program``, 0 = acoustic grand) holding ``notes``."""
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    instrument.notes.extend(notes)
    midi.instruments.append(instrument)
    return midi
