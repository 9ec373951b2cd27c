"""mir_eval-based transcription measures on hand-built note lists."""

from __future__ import annotations

import pretty_midi
import pytest

from wavegen_core.evaluation.transcription import (
    METRIC_NAMES,
    frame_scores,
    mean_metrics,
    transcription_metrics,
)


def _notes(*specs: tuple[int, float, float, int]) -> list[pretty_midi.Note]:
    return [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for p, s, e, v in specs]


REFERENCE = _notes((60, 0.0, 1.0, 80), (64, 1.0, 2.0, 80), (67, 2.0, 3.0, 100), (72, 3.0, 4.0, 60))


def test_a_perfect_transcription_scores_one_everywhere() -> None:
    scores = transcription_metrics(REFERENCE, REFERENCE)
    assert set(scores) == set(METRIC_NAMES)
    assert all(value == 1.0 for value in scores.values())


def test_onsets_within_50_ms_count_and_later_ones_do_not() -> None:
    shifted = [pretty_midi.Note(n.velocity, n.pitch, n.start + 0.03, n.end) for n in REFERENCE]
    assert transcription_metrics(REFERENCE, shifted)["onset_f1"] == 1.0
    late = [pretty_midi.Note(n.velocity, n.pitch, n.start + 0.08, n.end) for n in REFERENCE]
    assert transcription_metrics(REFERENCE, late)["onset_f1"] == 0.0


def test_a_split_note_keeps_its_onset_but_loses_its_offset() -> None:
    # The first note transcribed as two halves: the first half's onset matches, its
    # offset does not; the second half is an extra note.
    split = _notes((60, 0.0, 0.5, 80), (60, 0.5, 1.0, 80)) + REFERENCE[1:]
    scores = transcription_metrics(REFERENCE, split)
    assert scores["onset_recall"] == 1.0 and scores["onset_precision"] == pytest.approx(0.8)
    assert scores["offset_recall"] == pytest.approx(0.75)
    assert scores["frame_f1"] == pytest.approx(1.0, abs=0.01)


def test_missing_notes_lower_recall_and_frames() -> None:
    scores = transcription_metrics(REFERENCE, REFERENCE[:2])
    assert scores["onset_precision"] == 1.0 and scores["onset_recall"] == 0.5
    assert scores["frame_recall"] == pytest.approx(0.5, abs=0.01)
    assert transcription_metrics(REFERENCE, [])["onset_f1"] == 0.0


def test_velocity_counts_only_when_close_after_rescaling() -> None:
    # One estimate velocity far off the linear fit of the others fails the velocity test.
    wrong = [
        pretty_midi.Note(v, n.pitch, n.start, n.end)
        for n, v in zip(REFERENCE, (40, 40, 50, 127), strict=True)
    ]
    scores = transcription_metrics(REFERENCE, wrong)
    assert scores["offset_f1"] == 1.0
    assert scores["velocity_f1"] < 1.0


def test_frame_scores_of_a_wrong_pitch() -> None:
    assert frame_scores(REFERENCE[:1], _notes((61, 0.0, 1.0, 80))) == (0.0, 0.0, 0.0)


def test_mean_metrics_averages_pieces() -> None:
    perfect = transcription_metrics(REFERENCE, REFERENCE)
    empty = transcription_metrics(REFERENCE, [])
    assert mean_metrics([perfect, empty])["onset_f1"] == 0.5
    with pytest.raises(ValueError):
        transcription_metrics([], REFERENCE)
