"""Training-time augmentation: shapes, repeatability, alignment and its bounds."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.audio.augment import AugmentConfig, augment, eq_response, room_response
from wavegen_core.seeding import step_generator

RATE = 16000
ON = AugmentConfig(enabled=True, eq_probability=1.0, noise_probability=1.0, room_probability=1.0)


def _chords(batch: int = 3, samples: int = RATE) -> torch.Tensor:
    t = torch.arange(samples) / RATE
    tones = [torch.sin(2 * math.pi * f * t) for f in (220.0, 277.2, 329.6)]
    return 0.3 * torch.stack([sum(tones) * torch.exp(-t * (1 + i)) for i in range(batch)])


def test_augmentation_keeps_shape_and_dtype_and_is_repeatable_per_generator() -> None:
    audio = _chords()
    once = augment(audio, step_generator(0, 7), ON, RATE)
    again = augment(audio, step_generator(0, 7), ON, RATE)
    other = augment(audio, step_generator(0, 8), ON, RATE)
    assert once.shape == audio.shape and once.dtype == audio.dtype
    assert torch.equal(once, again)
    assert not torch.allclose(once, other)
    # Each excerpt of a batch draws its own changes.
    assert not torch.allclose(once[0] / once[0].norm(), once[1] / once[1].norm(), atol=1e-3)


def test_disabled_augmentation_returns_the_audio_untouched() -> None:
    audio = _chords()
    assert augment(audio, step_generator(0, 0), AugmentConfig(), RATE) is audio


def test_an_onset_stays_where_it_was_under_room_eq_and_gain() -> None:
    quiet = AugmentConfig(
        enabled=True, eq_probability=1.0, noise_probability=0.0, room_probability=1.0
    )
    onset = 6000
    click = torch.zeros(4, RATE)
    click[:, onset] = 1.0
    out = augment(click, step_generator(1, 3), quiet, RATE)
    for row in out.abs():
        assert int(row.argmax()) == onset
        # Nothing of substance before the onset: the EQ is zero-phase and short.
        assert float(row[: onset - 64].max()) < 0.05 * float(row[onset])


def test_gain_alone_stays_within_its_decibels() -> None:
    gain_only = AugmentConfig(
        enabled=True, eq_probability=0.0, noise_probability=0.0, room_probability=0.0, gain_db=6.0
    )
    audio = _chords(batch=16)
    out = augment(audio, step_generator(2, 0), gain_only, RATE)
    ratios_db = 20 * torch.log10(out.norm(dim=1) / audio.norm(dim=1))
    assert float(ratios_db.abs().max()) <= 6.0 + 1e-4
    assert float(ratios_db.std()) > 1.0  # drawn, not fixed


def test_noise_sits_at_the_drawn_signal_to_noise_ratio() -> None:
    noise_only = AugmentConfig(
        enabled=True,
        eq_probability=0.0,
        noise_probability=1.0,
        room_probability=0.0,
        gain_db=0.0,
        snr_db=(30.0, 30.0),
    )
    audio = _chords(batch=2)
    out = augment(audio, step_generator(3, 0), noise_only, RATE)
    snr = 20 * torch.log10(audio.norm(dim=1) / (out - audio).norm(dim=1))
    assert torch.allclose(snr, torch.full_like(snr, 30.0), atol=0.5)


def test_eq_stays_within_its_range_and_the_room_tail_decays() -> None:
    frequencies = torch.linspace(0, RATE / 2, 2049)
    for step in range(20):
        gain_db = 20 * torch.log10(eq_response(frequencies, step_generator(4, step), 6.0))
        # Two shelves and two peaks can stack, but never past four times the range.
        assert float(gain_db.abs().max()) <= 24.0 + 1e-3
    tail = room_response(step_generator(5, 0), 0.5, RATE)
    assert float(tail.norm()) == pytest.approx(1.0, rel=1e-5)
    quarter = len(tail) // 4
    assert float(tail[-quarter:].square().sum()) < 1e-3 * float(tail[:quarter].square().sum())
