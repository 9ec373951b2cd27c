"""Transcription metrics with mir_eval, on lists of pretty_midi notes.

The measures of Hawthorne et al. 2018, section 5: note precision/recall/F1 with the
onset alone (50 ms tolerance), with the offset too (offset within 20 % of the note's
length or 50 ms, whichever is larger), with offset and velocity, and frame-level
precision/recall/F1 of the piano rolls on a fixed grid.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pretty_midi

# mir_eval's default onset tolerance (50 ms), as in the Onsets and Frames evaluation.
ONSET_TOLERANCE = 0.05
# Frame-level metrics compare piano rolls sampled at this rate (frames per second).
FRAME_RATE = 100.0
# Names of the measures :func:`transcription_metrics` returns, in table order.
METRIC_NAMES = tuple(
    f"{measure}_{part}"
    for measure in ("onset", "offset", "velocity", "frame")
    for part in ("precision", "recall", "f1")
)


def _mir_eval() -> ModuleType:
    """mir_eval, imported on first use: through scipy.stats it takes a second, which every
    stage importing this module without scoring anything would otherwise pay."""
    import mir_eval

    return mir_eval


def intervals_and_hz(notes: list[pretty_midi.Note]) -> tuple[np.ndarray, np.ndarray]:
    """Notes as mir_eval wants them: (n, 2) onset/offset seconds and pitches in Hz."""
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[note.start, note.end] for note in notes])
    return intervals, np.array([pretty_midi.note_number_to_hz(note.pitch) for note in notes])


def note_f1(
    reference: list[pretty_midi.Note], estimated: list[pretty_midi.Note], *, with_offset: bool
) -> float:
    """Note F1 on onsets and pitch, and on offsets too when ``with_offset`` (within 20 %
    of the note's length or 50 ms); 0 when nothing is estimated."""
    mir_eval = _mir_eval()
    if not reference or not estimated:
        return 0.0
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        *intervals_and_hz(reference),
        *intervals_and_hz(estimated),
        onset_tolerance=ONSET_TOLERANCE,
        offset_ratio=0.2 if with_offset else None,
    )
    return float(f1)


def note_onset_f1(reference: list[pretty_midi.Note], estimated: list[pretty_midi.Note]) -> float:
    """Note F1 on onsets and pitch alone (offsets ignored); 0 when nothing is estimated."""
    return note_f1(reference, estimated, with_offset=False)


def _frame_f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _active_pitches(notes: list[pretty_midi.Note], n_frames: int) -> list[np.ndarray]:
    """For each frame of the grid, the frequencies (Hz) of the notes sounding in it."""
    roll = np.zeros((n_frames, 128), dtype=bool)
    for note in notes:
        first = int(round(note.start * FRAME_RATE))
        last = max(int(round(note.end * FRAME_RATE)), first + 1)
        roll[first:last, note.pitch] = True
    hz = pretty_midi.note_number_to_hz(np.arange(128))
    return [hz[row] for row in roll]


def frame_scores(
    reference: list[pretty_midi.Note], estimated: list[pretty_midi.Note]
) -> tuple[float, float, float]:
    """Frame precision, recall and F1 of the two piano rolls (mir_eval.multipitch)."""
    mir_eval = _mir_eval()
    end = max((note.end for note in reference + estimated), default=0.0)
    n_frames = int(round(end * FRAME_RATE)) + 2
    times = np.arange(n_frames) / FRAME_RATE
    scores = mir_eval.multipitch.metrics(
        times, _active_pitches(reference, n_frames), times, _active_pitches(estimated, n_frames)
    )
    precision, recall = float(scores[0]), float(scores[1])
    return precision, recall, _frame_f1(precision, recall)


def transcription_metrics(
    reference: list[pretty_midi.Note], estimated: list[pretty_midi.Note]
) -> dict[str, float]:
    """All measures of :data:`METRIC_NAMES` for one piece; 0 where nothing is estimated.

    Velocity is compared as mir_eval does (after a least-squares rescaling of the
    estimate, within 10 % of the velocity range), since transcribers differ in scale.
    """
    mir_eval = _mir_eval()
    if not reference:
        raise ValueError("the reference transcription holds no notes")
    scores: dict[str, float] = dict.fromkeys(METRIC_NAMES, 0.0)
    if not estimated:
        return scores
    ref_intervals, ref_hz = intervals_and_hz(reference)
    est_intervals, est_hz = intervals_and_hz(estimated)
    for measure, offset_ratio in (("onset", None), ("offset", 0.2)):
        precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_intervals,
            ref_hz,
            est_intervals,
            est_hz,
            onset_tolerance=ONSET_TOLERANCE,
            offset_ratio=offset_ratio,
        )
        scores.update(
            {f"{measure}_precision": precision, f"{measure}_recall": recall, f"{measure}_f1": f1}
        )
    precision, recall, f1, _ = mir_eval.transcription_velocity.precision_recall_f1_overlap(
        ref_intervals,
        ref_hz,
        np.array([note.velocity for note in reference]),
        est_intervals,
        est_hz,
        np.array([note.velocity for note in estimated]),
        onset_tolerance=ONSET_TOLERANCE,
        offset_ratio=0.2,
    )
    scores.update({"velocity_precision": precision, "velocity_recall": recall, "velocity_f1": f1})
    precision, recall, f1 = frame_scores(reference, estimated)
    scores.update({"frame_precision": precision, "frame_recall": recall, "frame_f1": f1})
    return {name: round(float(value), 4) for name, value in scores.items()}


def mean_metrics(per_piece: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each measure over pieces (unweighted, as in the paper's tables)."""
    if not per_piece:
        raise ValueError("no pieces to average")
    return {name: round(float(np.mean([p[name] for p in per_piece])), 4) for name in METRIC_NAMES}
