"""Transcription metrics with mir_eval, on lists of pretty_midi notes."""

from __future__ import annotations

import mir_eval
import numpy as np
import pretty_midi

# mir_eval's default onset tolerance (50 ms), as in the Onsets and Frames evaluation.
ONSET_TOLERANCE = 0.05


def intervals_and_hz(notes: list[pretty_midi.Note]) -> tuple[np.ndarray, np.ndarray]:
    """Notes as mir_eval wants them: (n, 2) onset/offset seconds and pitches in Hz."""
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[note.start, note.end] for note in notes])
    return intervals, np.array([pretty_midi.note_number_to_hz(note.pitch) for note in notes])


def note_onset_f1(reference: list[pretty_midi.Note], estimated: list[pretty_midi.Note]) -> float:
    """Note F1 on onsets and pitch alone (offsets ignored); 0 when nothing is estimated."""
    if not reference or not estimated:
        return 0.0
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        *intervals_and_hz(reference),
        *intervals_and_hz(estimated),
        onset_tolerance=ONSET_TOLERANCE,
        offset_ratio=None,
    )
    return float(f1)
