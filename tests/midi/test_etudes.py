"""The generated piano material: deterministic for a seed, every texture, the whole keyboard."""

from __future__ import annotations

import numpy as np
import pytest

from wavegen_core.midi.etudes import FIGURES, TEXTURES, _Section, etude, etude_rng
from wavegen_core.midi.events import SUSTAIN_CONTROL


def _notes(midi):
    return [(n.pitch, n.start, n.end, n.velocity) for n in midi.instruments[0].notes]


def test_an_etude_is_the_same_for_its_seed_and_index_and_differs_otherwise() -> None:
    assert _notes(etude(3, 0, 20.0)) == _notes(etude(3, 0, 20.0))
    assert _notes(etude(3, 0, 20.0)) != _notes(etude(3, 1, 20.0))
    assert _notes(etude(3, 0, 20.0)) != _notes(etude(4, 0, 20.0))


def test_etudes_span_the_keyboard_within_the_piano() -> None:
    pitches = [n[0] for index in range(8) for n in _notes(etude(0, index, 60.0))]
    assert min(pitches) <= 24 and max(pitches) >= 103
    assert min(pitches) >= 21 and max(pitches) <= 108


@pytest.mark.parametrize("texture", TEXTURES)
def test_every_texture_writes_valid_notes_forward_in_time(texture: str) -> None:
    out = _Section()
    end = FIGURES[texture](out, etude_rng(1, 0), 2.0, 0.5)
    assert out.notes and end > 2.0
    for note in out.notes:
        assert 21 <= note.pitch <= 108 and 1 <= note.velocity <= 127
        assert 2.0 <= note.start < note.end <= end + 1e-9


def test_pedalled_figures_press_and_lift_the_sustain_pedal() -> None:
    midi = etude(0, 0, 120.0)
    pedal = [c for c in midi.instruments[0].control_changes if c.number == SUSTAIN_CONTROL]
    values = {c.value for c in pedal}
    assert values == {0, 127}
    # It ends lifted.
    assert pedal[-1].value == 0


def test_an_etude_fills_the_seconds_asked_for_with_a_variety_of_textures() -> None:
    midi = etude(0, 2, 60.0)
    notes = _notes(midi)
    assert 60.0 <= max(n[2] for n in notes) < 120.0
    # Wide chords: some onsets strike five or more notes at once.
    onsets = np.round([n[1] for n in notes], 6)
    _, counts = np.unique(onsets, return_counts=True)
    assert counts.max() >= 5
