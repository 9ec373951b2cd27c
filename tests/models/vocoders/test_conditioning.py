"""The MIDI conditioning shared by the vocoders: the roll and the conditioning network."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch

from wavegen_core.data.pairs import (
    KEY_CHANNELS,
    PEDAL_CHANNEL,
    ROLL_CHANNELS,
    conditioning_roll,
    frames_for_samples,
)
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.vocoders.conditioning import ConditioningNetwork
from wavegen_core.models.vocoders.config import ConditioningConfig


def _midi(*notes: tuple[int, float, float, int], pedal: tuple[float, float] | None = None):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for pitch, start, end, velocity in notes:
        piano.notes.append(pretty_midi.Note(velocity, pitch, start, end))
    if pedal is not None:
        piano.control_changes += [
            pretty_midi.ControlChange(64, 127, pedal[0]),
            pretty_midi.ControlChange(64, 0, pedal[1]),
        ]
    midi.instruments.append(piano)
    return midi


def _features(roll: np.ndarray) -> np.ndarray:
    return roll[:KEY_CHANNELS].reshape(3, KEY_COUNT, -1)


def test_roll_marks_onset_sounding_and_velocity_on_the_frame_grid() -> None:
    fps = 62.5  # 16 ms frames
    roll = conditioning_roll(_midi((60, 0.1, 0.5, 100)), 40, fps)
    assert roll.shape == (ROLL_CHANNELS, 40) and roll.dtype == np.float32
    onset, sounding, velocity = _features(roll)
    key = 60 - LOWEST_KEY
    # 0.1 s is in frame floor(6.25) = 6; 0.5 s ends in frame ceil(31.25) = 32.
    assert np.flatnonzero(onset[key]).tolist() == [6]
    assert np.flatnonzero(sounding[key]).tolist() == list(range(6, 32))
    assert np.allclose(velocity[key, 6:32], 100 / 127)
    assert onset.sum() == 1 and sounding.sum() == 26 and (velocity > 0).sum() == 26


def test_roll_follows_the_sustain_pedal_and_restrikes() -> None:
    fps = 10.0
    held = _features(conditioning_roll(_midi((64, 0.0, 0.2, 80), pedal=(0.1, 1.0)), 20, fps))
    assert np.flatnonzero(held[1][64 - LOWEST_KEY]).tolist() == list(range(0, 10))
    twice = _features(conditioning_roll(_midi((64, 0.0, 0.5, 40), (64, 0.5, 1.0, 120)), 20, fps))
    key = 64 - LOWEST_KEY
    assert np.flatnonzero(twice[0][key]).tolist() == [0, 5]
    assert np.allclose(twice[2][key, :5], 40 / 127) and np.allclose(twice[2][key, 5:10], 120 / 127)


def test_roll_holds_the_sustain_pedal_on_the_frame_grid() -> None:
    fps = 10.0
    midi = _midi((64, 0.0, 0.2, 80), pedal=(0.15, 1.02))
    midi.instruments.append(pretty_midi.Instrument(program=0, is_drum=True))
    midi.instruments[-1].control_changes.append(pretty_midi.ControlChange(64, 127, 1.5))
    roll = conditioning_roll(midi, 20, fps)
    # Down from frame floor(1.5) = 1 to frame ceil(10.2) = 11; a drum's pedal is not the piano's.
    assert np.flatnonzero(roll[PEDAL_CHANNEL]).tolist() == list(range(1, 11))
    assert roll.shape == (ROLL_CHANNELS, 20)
    assert not conditioning_roll(_midi((64, 0.0, 0.2, 80)), 20, fps)[PEDAL_CHANNEL].any()


def test_roll_cuts_notes_past_the_end_and_ignores_keys_off_the_piano() -> None:
    roll = conditioning_roll(_midi((60, 0.9, 3.0, 90), (10, 0.0, 0.5, 90)), 10, 10.0)
    onset, sounding, _ = _features(roll)
    assert np.flatnonzero(sounding[60 - LOWEST_KEY]).tolist() == [9]
    assert onset.sum() == 1 and sounding.sum() == 1


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
@pytest.mark.parametrize("hop", [16, 5])
def test_network_gives_hop_samples_per_frame(upsample: str, hop: int) -> None:
    torch.manual_seed(0)
    network = ConditioningNetwork(
        ConditioningConfig(
            hop_length=hop, channels=8, layers=2, upsample=upsample, excitation="none"
        )
    )
    roll = torch.rand(2, ROLL_CHANNELS, 7)
    assert network.encode(roll).shape == (2, 8, 7)
    assert network(roll).shape == (2, 8, 7 * hop)
    assert frames_for_samples(7 * hop, hop) == 7 and frames_for_samples(7 * hop + 1, hop) == 8


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
def test_context_frames_bound_what_a_frame_depends_on(upsample: str) -> None:
    """Changing the roll more than context_frames away leaves a frame's samples alone."""
    torch.manual_seed(0)
    hop = 8
    network = ConditioningNetwork(
        ConditioningConfig(
            hop_length=hop,
            channels=4,
            layers=2,
            kernel_size=3,
            upsample=upsample,
            excitation="none",
        )
    )
    roll = torch.rand(1, ROLL_CHANNELS, 30)
    changed = roll.clone()
    frame = 10
    far = frame + network.context_frames + 1
    changed[..., far:] = torch.rand_like(changed[..., far:])
    before, after = network(roll), network(changed)
    span = slice(frame * hop, (frame + 1) * hop)
    torch.testing.assert_close(before[..., span], after[..., span])
    assert not torch.allclose(before, after)
