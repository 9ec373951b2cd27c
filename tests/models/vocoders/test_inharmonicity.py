"""B measured from recordings: stiff-string chords give back each played key's B, and the
keys nobody played follow the prior's slope from their measured neighbours."""

from __future__ import annotations

import math

import numpy as np
import pretty_midi
import pytest
import torch

from wavegen_core.data.pairs import pair_piece
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.ddsp.config import DdspConfig
from wavegen_core.models.vocoders.ddsp.inharmonicity import estimate_inharmonicity
from wavegen_core.models.vocoders.ddsp.model import SPEC, DdspPiano

RATE = 16000
HOP = 256
PRIOR = (1e-5, 1e-2)
# Played keys (MIDI) and the B their strings have: from the bass to the treble, as on
# a piano, rising along the keyboard.
STRINGS = {43: 4e-5, 50: 8e-5, 55: 1.2e-4, 60: 2.5e-4, 64: 3.5e-4, 67: 5e-4, 72: 9e-4}


def _stiff_note(pitch: int, seconds: float, velocity: float) -> np.ndarray:
    """A struck stiff string: partials at k f0 sqrt(1 + B k^2), falling as 1/k, decaying."""
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    b = STRINGS[pitch]
    note = np.zeros_like(t)
    for k in range(1, 25):
        frequency = k * f0 * math.sqrt(1 + b * k * k)
        if frequency >= 0.45 * RATE:
            break
        note += np.sin(2 * math.pi * frequency * t + k) / k * np.exp(-t * (1 + k / 4))
    return velocity * note / 4


def _chorale(seed: int) -> tuple[np.ndarray, pretty_midi.PrettyMIDI]:
    """Three-note chords of the STRINGS' keys, half a second each, and their MIDI."""
    generator = np.random.default_rng(seed)
    chord_seconds, chords = 0.5, 24
    audio = np.zeros(round(chord_seconds * chords * RATE) + RATE)
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for index in range(chords):
        start = index * chord_seconds
        for pitch in generator.choice(list(STRINGS), size=3, replace=False):
            velocity = float(generator.uniform(0.5, 1.0))
            first = round(start * RATE)
            note = _stiff_note(int(pitch), chord_seconds, velocity)
            audio[first : first + len(note)] += note
            piano.notes.append(
                pretty_midi.Note(round(velocity * 127), int(pitch), start, start + chord_seconds)
            )
    midi.instruments.append(piano)
    return audio.astype(np.float32), midi


@pytest.fixture(scope="module")
def pieces():
    return [pair_piece(f"p{seed}", *_chorale(seed), RATE, HOP) for seed in range(2)]


def test_each_played_key_gets_its_strings_inharmonicity(pieces) -> None:
    estimate = estimate_inharmonicity(pieces, RATE, HOP, partials=24, prior=PRIOR)
    played = [pitch - LOWEST_KEY for pitch in STRINGS]
    assert np.flatnonzero(estimate.measured).tolist() == played
    assert (estimate.notes[played] >= 3).all()
    for pitch, b in STRINGS.items():
        found = estimate.inharmonicity[pitch - LOWEST_KEY]
        # Within about a fifth of B: partial 12 of middle C then lands within 1 Hz.
        assert found == pytest.approx(b, rel=0.2), f"MIDI {pitch}: B {found:.2e}, truth {b:.2e}"


def test_keys_not_played_are_filled_between_and_beyond_the_measured_ones(pieces) -> None:
    estimate = estimate_inharmonicity(pieces, RATE, HOP, partials=24, prior=PRIOR)
    log_b = np.log(estimate.inharmonicity)
    low, high = 43 - LOWEST_KEY, 72 - LOWEST_KEY
    # Between two measured keys: on the line between them (in log B).
    between = 45 - LOWEST_KEY
    left, right = 43 - LOWEST_KEY, 50 - LOWEST_KEY
    expected = log_b[left] + (log_b[right] - log_b[left]) * (between - left) / (right - left)
    assert log_b[between] == pytest.approx(expected)
    # Beyond: the prior's slope (log-spaced from PRIOR[0] to PRIOR[1] over the keyboard).
    slope = (math.log(PRIOR[1]) - math.log(PRIOR[0])) / (KEY_COUNT - 1)
    assert np.allclose(np.diff(log_b[high:]), slope)
    assert np.allclose(np.diff(log_b[: low + 1]), slope)


def test_without_notes_the_prior_is_kept() -> None:
    silent = pair_piece("quiet", np.zeros(RATE, np.float32), pretty_midi.PrettyMIDI(), RATE, HOP)
    estimate = estimate_inharmonicity([silent], RATE, HOP, partials=24, prior=PRIOR)
    assert not estimate.measured.any()
    assert estimate.inharmonicity[0] == pytest.approx(PRIOR[0])
    assert estimate.inharmonicity[-1] == pytest.approx(PRIOR[1])


def test_the_ddsp_piano_starts_from_the_measured_inharmonicity(pieces) -> None:
    config = DdspConfig()
    model = DdspPiano(config, ConditioningConfig(hop_length=HOP), RATE)
    SPEC.initialise(model, pieces)
    b = model.log_inharmonicity.exp().detach()
    assert float(b[60 - LOWEST_KEY]) == pytest.approx(STRINGS[60], rel=0.2)
    off = DdspPiano(
        config.model_copy(update={"measure_inharmonicity": False}),
        ConditioningConfig(hop_length=HOP),
        RATE,
    )
    before = off.log_inharmonicity.detach().clone()
    SPEC.initialise(off, pieces)
    assert torch.equal(off.log_inharmonicity.detach(), before)
