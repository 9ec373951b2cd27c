"""The decoding search: it finds the rule that drops spurious onsets on hand-built pieces."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from wavegen_core.evaluation.decoding_search import (
    PieceActivations,
    decoding_scores,
    search_decoding,
)
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY, NoteDecodingConfig

FPS = 10.0


def _piece(seed: int) -> PieceActivations:
    """Notes the model sees clearly (onset 0.95, frames 0.9), plus one-frame onsets of
    0.6 on other keys (partials of those notes on an unfamiliar piano)."""
    rng = np.random.default_rng(seed)
    onsets = np.zeros((200, KEY_COUNT), dtype=np.float32)
    frames = np.zeros_like(onsets)
    reference = []
    for start in range(5, 190, 12):
        key = int(rng.integers(20, 60))
        onsets[start, key] = 0.95
        frames[start : start + 8, key] = 0.9
        reference.append(pretty_midi.Note(80, key + LOWEST_KEY, start / FPS, (start + 8) / FPS))
        onsets[start, key + 12] = frames[start, key + 12] = 0.6
    return PieceActivations(onsets, frames, np.full_like(onsets, 0.6), reference)


def test_the_search_finds_a_rule_without_the_spurious_notes() -> None:
    pieces = [_piece(seed) for seed in range(3)]
    paper_onset, _ = decoding_scores(pieces, NoteDecodingConfig(), FPS)
    assert paper_onset == pytest.approx(2 / 3, abs=0.01)  # precision 1/2, recall 1

    best, trace = search_decoding(pieces, FPS)

    assert decoding_scores(pieces, best, FPS) == (1.0, 1.0)
    assert best.onset_threshold > 0.6 or best.min_note_seconds > 0.1
    assert trace[0]["onset_threshold"] == 0.5 and trace[0]["onset_f1"] < 0.7
    assert max(row["onset_f1"] for row in trace) == 1.0


def test_no_pieces_is_an_error() -> None:
    with pytest.raises(ValueError, match="no pieces"):
        decoding_scores([], NoteDecodingConfig(), FPS)
