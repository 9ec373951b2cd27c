"""Choosing how the transcriber's activations become notes, on held-out audio.

The thresholds of Hawthorne et al. 2018 (0.5 for onsets and frames) suit audio like the
training audio. On another piano the onset head also fires, weakly and for a frame or
two, on the partials of other notes and inside held notes; a higher onset threshold, a
shortest note and a higher threshold for re-striking a sounding key remove most of
those notes. :func:`search_decoding` picks them by coordinate ascent over
:data:`DECODING_GRID`, scoring mean note onset F1 (then with-offset F1) on pieces whose
activations were predicted once. Choose on audio held out from training and from the
evaluation sets, or the figures reported on those sets flatter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pretty_midi

from wavegen_core.evaluation.transcription import note_f1
from wavegen_core.midi.rolls import NoteDecodingConfig, decode_notes
from wavegen_core.progress import progress

DECODING_GRID: dict[str, tuple[Any, ...]] = {
    "onset_threshold": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "frame_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "min_note_seconds": (0.0, 0.02, 0.04, 0.07, 0.1),
    "restrike_threshold": (None, 0.8, 0.9, 0.95),
}


@dataclass(frozen=True)
class PieceActivations:
    """A piece's (n_frames, 88) predictions and its reference notes."""

    onset_probs: np.ndarray
    frame_probs: np.ndarray
    velocity: np.ndarray
    reference: list[pretty_midi.Note]


def decoding_scores(
    pieces: list[PieceActivations], config: NoteDecodingConfig, frames_per_second: float
) -> tuple[float, float]:
    """Mean note onset F1 and with-offset F1 of ``pieces`` decoded with ``config``."""
    if not pieces:
        raise ValueError("no pieces to score the decoding on")
    onset, offset = [], []
    for piece in pieces:
        notes = decode_notes(
            piece.onset_probs, piece.frame_probs, piece.velocity, config, frames_per_second
        )
        onset.append(note_f1(piece.reference, notes, with_offset=False))
        offset.append(note_f1(piece.reference, notes, with_offset=True))
    return float(np.mean(onset)), float(np.mean(offset))


def search_decoding(
    pieces: list[PieceActivations],
    frames_per_second: float,
    start: NoteDecodingConfig | None = None,
    grid: dict[str, tuple[Any, ...]] = DECODING_GRID,
    rounds: int = 3,
) -> tuple[NoteDecodingConfig, list[dict[str, Any]]]:
    """The decoding of ``grid`` that scores best on ``pieces``, and every setting tried.

    Coordinate ascent from ``start`` (the paper's thresholds by default): each knob in
    turn takes the grid value that scores best with the others held, until a round
    changes nothing or ``rounds`` have run. Scores compare as (onset F1, with-offset F1).
    """
    best = start or NoteDecodingConfig()
    cache: dict[str, tuple[float, float]] = {}
    trace: list[dict[str, Any]] = []

    def score(config: NoteDecodingConfig) -> tuple[float, float]:
        key = config.model_dump_json()
        if key not in cache:
            cache[key] = decoding_scores(pieces, config, frames_per_second)
            onset, offset = cache[key]
            trace.append(
                {**config.model_dump(), "onset_f1": round(onset, 4), "offset_f1": round(offset, 4)}
            )
        return cache[key]

    best_score = score(best)
    settings = [(knob, value) for knob, values in grid.items() for value in values]
    for round_ in range(rounds):
        changed = False
        for knob, value in progress(settings, desc=f"decoding search, round {round_ + 1}"):
            candidate = best.model_copy(update={knob: value})
            candidate_score = score(candidate)
            if candidate_score > best_score:
                best, best_score, changed = candidate, candidate_score, True
        if not changed:
            break
    return best, trace
