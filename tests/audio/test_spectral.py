"""Spectral distances: zero for equal signals, ordered by how different two signals are."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.audio.spectral import evaluation_mel, mel_l1, multi_resolution_stft


def _tone(frequency: float, seconds: float = 0.5, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * math.pi * frequency * t)


def test_identical_signals_are_at_distance_zero() -> None:
    tone = _tone(440.0)
    scores = multi_resolution_stft(tone, tone)
    assert all(float(value) == pytest.approx(0.0, abs=1e-6) for value in scores.values())
    assert float(mel_l1(tone, tone, evaluation_mel(16000))) == pytest.approx(0.0, abs=1e-6)


def test_distance_grows_with_the_difference() -> None:
    reference = _tone(440.0)
    near = 0.95 * reference  # the same note, 0.4 dB quieter
    far = _tone(660.0)  # another note
    close, distant = multi_resolution_stft(near, reference), multi_resolution_stft(far, reference)
    assert 0 < float(close["total"]) < float(distant["total"])
    assert float(close["spectral_convergence"]) < 0.1 < float(distant["spectral_convergence"])
    mel = evaluation_mel(16000)
    assert 0 < float(mel_l1(near, reference, mel)) < float(mel_l1(far, reference, mel))


def test_it_is_a_differentiable_loss_too() -> None:
    estimate = (
        0.01 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    ).requires_grad_()
    target = torch.stack([_tone(440.0, 0.25), _tone(880.0, 0.25)])
    multi_resolution_stft(estimate, target)["total"].backward()
    assert estimate.grad is not None and torch.isfinite(estimate.grad).all()
    assert estimate.grad.abs().sum() > 0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        multi_resolution_stft(torch.zeros(100), torch.zeros(101))
