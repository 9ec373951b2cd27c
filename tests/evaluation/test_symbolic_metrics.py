"""Statistics of composed pieces against a reference set, and the piano-roll picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from wavegen_core.evaluation.plots import plot_piano_roll
from wavegen_core.evaluation.symbolic import (
    IOI_BIN_EDGES,
    chord_onsets,
    compare_sets,
    histogram_distance,
    piece_statistics,
)


def _notes(*specs: tuple[int, float, float]) -> list[pretty_midi.Note]:
    return [pretty_midi.Note(velocity=80, pitch=p, start=s, end=e) for p, s, e in specs]


# Bins by hand: [0.2, 0.3) is the sixth and [0.5, 0.75) the ninth of IOI_BIN_EDGES.
FIFTH_SECOND_BIN, HALF_SECOND_BIN = 5, 8


# C4 to C5, one note every half second, each lasting until the next: 8 notes over 4 s.
SCALE = _notes(
    *((p, i * 0.5, (i + 1) * 0.5) for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72)))
)
# A C major triad held for 2 s, then a D for 1 s: 3 notes sound, then 1.
CHORD_THEN_NOTE = _notes((60, 0.0, 2.0), (64, 0.0, 2.0), (67, 0.0, 2.0), (62, 2.0, 3.0))


def test_the_scale_has_its_pitch_classes_range_and_density() -> None:
    stats = piece_statistics(SCALE)
    expected = np.zeros(12)
    expected[[0, 2, 4, 5, 7, 9, 11]] = 1 / 8
    expected[0] = 2 / 8  # C4 and C5
    np.testing.assert_allclose(stats.pitch_class_histogram, expected)
    assert stats.pitch_class_counts.sum() == 8
    assert stats.pitch_range == 12
    assert stats.notes == 8 and stats.seconds == 4.0
    assert stats.note_density == 2.0
    assert stats.mean_polyphony == 1.0


def test_half_second_intervals_land_in_the_half_second_bin() -> None:
    stats = piece_statistics(SCALE)
    assert tuple(IOI_BIN_EDGES[HALF_SECOND_BIN : HALF_SECOND_BIN + 2]) == (0.5, 0.75)
    assert stats.ioi_counts[HALF_SECOND_BIN] == 7 and stats.ioi_counts.sum() == 7
    assert stats.ioi_histogram[HALF_SECOND_BIN] == 1.0


def test_intervals_on_a_bin_edge_are_not_lost_to_rounding() -> None:
    # 0.3 - 0.1 is 0.19999999999999998 in floats; it belongs to the bin from 0.2 s.
    stats = piece_statistics(_notes((60, 0.1, 0.2), (62, 0.3, 0.4), (64, 3.0, 3.1)))
    assert tuple(IOI_BIN_EDGES[FIFTH_SECOND_BIN : FIFTH_SECOND_BIN + 2]) == (0.2, 0.3)
    assert stats.ioi_counts[FIFTH_SECOND_BIN] == 1
    assert stats.ioi_counts[-1] == 1  # the 2.7 s pause


def test_exact_mean_polyphony_of_a_chord_then_a_note() -> None:
    # 3 notes for 2 s and 1 for 1 s: (3 * 2 + 1 * 1) / 3 s.
    assert piece_statistics(CHORD_THEN_NOTE).mean_polyphony == pytest.approx(7 / 3)
    # A rest is not sounding time: one more note after a 1 s rest gives 8 / 4 s.
    with_rest = CHORD_THEN_NOTE + _notes((60, 4.0, 5.0))
    assert piece_statistics(with_rest).mean_polyphony == pytest.approx(2.0)
    assert piece_statistics(with_rest).note_density == pytest.approx(5 / 5.0)


def test_a_chords_onsets_within_10_ms_are_one_onset() -> None:
    rolled = _notes((60, 0.0, 1.0), (64, 0.005, 1.0), (67, 0.009, 1.0), (72, 0.5, 1.0))
    np.testing.assert_allclose(chord_onsets(rolled), [0.0, 0.5])
    stats = piece_statistics(rolled)
    assert stats.ioi_counts.sum() == 1 and stats.ioi_counts[HALF_SECOND_BIN] == 1
    # Groups are anchored at their first onset: notes 6 ms apart do not chain.
    np.testing.assert_allclose(
        chord_onsets(_notes(*((60, t, 1.0) for t in (0, 0.006, 0.012)))), [0, 0.012]
    )


def test_a_piece_without_notes_is_all_zeros() -> None:
    stats = piece_statistics([])
    assert stats.notes == 0 and stats.pitch_range == 0 and stats.mean_polyphony == 0.0
    assert not stats.pitch_class_histogram.any() and not stats.ioi_histogram.any()


def test_histogram_distance_is_zero_for_equal_and_one_for_disjoint() -> None:
    a, b = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.0, 1.0])
    assert histogram_distance(a, a) == 0.0
    assert histogram_distance(a, b) == 1.0
    assert histogram_distance(a, np.array([0.0, 0.5, 0.5])) == 0.5
    with pytest.raises(ValueError, match="not normalised"):
        histogram_distance(a, np.zeros(3))


def test_a_set_compared_with_itself_is_at_distance_zero() -> None:
    pieces = [SCALE, CHORD_THEN_NOTE, []]
    metrics = compare_sets(pieces, pieces)
    assert metrics["pitch_class_histogram_distance"] == 0.0
    assert metrics["ioi_histogram_distance"] == 0.0
    for name in ("note_density", "mean_polyphony", "pitch_range"):
        assert metrics[name] == metrics[f"reference_{name}"]
    # The empty piece is left out of the means: (12 + 7) / 2.
    assert metrics["pitch_range"] == 9.5


def test_compare_sets_pools_counts_and_reports_means_side_by_side() -> None:
    metrics = compare_sets([SCALE], [CHORD_THEN_NOTE])
    # Scale: C 2/8, six other classes 1/8; chord piece: C, D, E, G 1/4 each.
    assert metrics["pitch_class_histogram_distance"] == pytest.approx(0.375)
    # 0.5 s intervals against one 2 s interval.
    assert metrics["ioi_histogram_distance"] == 1.0
    assert metrics["note_density"] == 2.0
    assert metrics["reference_note_density"] == pytest.approx(round(4 / 3, 4))
    assert metrics["reference_mean_polyphony"] == pytest.approx(round(7 / 3, 4))
    # A set without a single interval (one chord) is as far as can be in rhythm.
    assert compare_sets([CHORD_THEN_NOTE[:3]], [SCALE])["ioi_histogram_distance"] == 1.0


@pytest.mark.parametrize(
    "generated, reference", [([], [SCALE]), ([[]], [SCALE]), ([SCALE], []), ([SCALE], [[], []])]
)
def test_a_set_without_notes_is_refused(
    generated: list[list[pretty_midi.Note]], reference: list[list[pretty_midi.Note]]
) -> None:
    with pytest.raises(ValueError, match="holds no notes"):
        compare_sets(generated, reference)


@pytest.mark.parametrize("notes", [SCALE + CHORD_THEN_NOTE, []], ids=["notes", "empty"])
def test_the_piano_roll_is_written_as_png(notes: list[pretty_midi.Note], tmp_path: Path) -> None:
    path = plot_piano_roll(
        notes, tmp_path / "rolls" / "sample.png", title="sample", primer_seconds=1.5
    )
    assert path == tmp_path / "rolls" / "sample.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    # Written atomically: no temporary file left beside it.
    assert [p.name for p in path.parent.iterdir()] == ["sample.png"]
    assert plot_piano_roll(notes, tmp_path / "plain.png", title="no primer").is_file()
