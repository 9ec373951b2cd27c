"""Piano rolls: MIDI notes to frame-wise targets for the 88 keys, and back to notes.

The frame grid is that of the log-mel front end (``wavegen_core.audio.mel``): frame
``i`` stands for time ``i / frames_per_second``. A note from ``start`` to ``end``
seconds covers frames ``round(start * fps)`` up to, not including,
``round(end * fps)``, so that decoding the targets gives back every onset and offset
to within half a frame.
"""

from __future__ import annotations

import numpy as np
import pretty_midi

from wavegen_core.config import NoteDecodingConfig

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
    targets = {name: np.zeros((n_frames, KEY_COUNT), dtype=np.float32) for name in TARGET_NAMES}
    for note in piano_notes(midi):
        key = note.pitch - LOWEST_KEY
        onset = _frame_of(note.start, frames_per_second)
        offset = max(_frame_of(note.end, frames_per_second), onset + 1)
        if onset >= n_frames:
            continue
        targets["frames"][onset:offset, key] = 1.0
        targets["onsets"][onset, key] = 1.0
        targets["velocity"][onset, key] = note.velocity / MAX_VELOCITY
        if offset < n_frames:
            targets["offsets"][offset, key] = 1.0
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


def _key_segments(onset_on: np.ndarray, frame_on: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) frame spans of the notes of one key.

    A note starts on a rising edge of the onset activation and lasts while the frame
    or the onset activation stays on; a new rising edge while it lasts ends it and
    starts the next (a re-struck key).
    """
    rising = onset_on & ~np.concatenate(([False], onset_on[:-1]))
    sounding = frame_on | onset_on
    segments: list[tuple[int, int]] = []
    start: int | None = None
    for frame in range(len(onset_on)):
        if start is not None and (rising[frame] or not sounding[frame]):
            segments.append((start, frame))
            start = None
        if rising[frame]:
            start = frame
    if start is not None:
        segments.append((start, len(onset_on)))
    return segments


def decode_notes(
    onset_probs: np.ndarray,
    frame_probs: np.ndarray,
    velocity: np.ndarray,
    config: NoteDecodingConfig,
    frames_per_second: float,
) -> list[pretty_midi.Note]:
    """Notes from (n_frames, 88) onset and frame probabilities and velocity predictions.

    The decoding of Hawthorne et al. 2018, section 3: only the onset head may start a
    note, the frame head sustains it. A note's velocity is the velocity head's value
    (a fraction of 127) at its onset frame. Notes shorter than
    ``config.min_note_seconds`` are dropped. Sorted by start time, then pitch.
    """
    onset_probs, frame_probs, velocity = (
        np.asarray(array, dtype=np.float32) for array in (onset_probs, frame_probs, velocity)
    )
    onset_on = onset_probs >= config.onset_threshold
    frame_on = frame_probs >= config.frame_threshold
    min_frames = config.min_note_seconds * frames_per_second
    notes = []
    for key in np.flatnonzero(onset_on.any(axis=0)):
        for start, end in _key_segments(onset_on[:, key], frame_on[:, key]):
            if end - start >= min_frames:
                notes.append(_note(int(key), start, end, velocity[start, key], frames_per_second))
    return sorted(notes, key=lambda note: (note.start, note.pitch))


def notes_to_midi(notes: list[pretty_midi.Note], program: int = 0) -> pretty_midi.PrettyMIDI:
    """A one-instrument MIDI (General MIDI ``program``, 0 = acoustic grand) holding ``notes``."""
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    instrument.notes.extend(notes)
    midi.instruments.append(instrument)
    return midi
