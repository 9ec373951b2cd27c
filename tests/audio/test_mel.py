"""The log-mel front end: shape, frame grid, and a pure tone landing in its band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import tone
from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig, mel_band_edges, mel_filterbank

CONFIG = MelConfig(n_mels=64)


@pytest.mark.parametrize("samples", [16000, 16001, 16000 + 511, 16000 + 512])
def test_frame_count_and_shape(samples: int) -> None:
    frontend = LogMelSpectrogram(CONFIG)
    log_mel = frontend(torch.zeros(2, samples))
    # Frame i is centred on sample i * hop_length, from sample 0 to the last.
    assert log_mel.shape == (2, samples // CONFIG.hop_length + 1, CONFIG.n_mels)
    assert frontend.frame_count(samples) == log_mel.shape[1]
    assert frontend(torch.zeros(samples)).shape == log_mel.shape[1:]
    # Silence maps to the finite floor log(eps).
    assert torch.allclose(log_mel, torch.full_like(log_mel, np.log(CONFIG.log_eps)))


def test_filterbank_triangles_peak_at_their_centres() -> None:
    filterbank = mel_filterbank(CONFIG)
    assert filterbank.shape == (CONFIG.n_mels, CONFIG.n_fft // 2 + 1)
    bin_hz = CONFIG.sample_rate / CONFIG.n_fft
    peaks = filterbank.argmax(axis=1) * bin_hz
    assert np.all(np.abs(peaks - mel_band_edges(CONFIG)[1:-1]) <= bin_hz)
    assert np.all(np.diff(mel_band_edges(CONFIG)) > 0)


def test_a440_peaks_in_the_band_centred_nearest_440_hz() -> None:
    audio = torch.from_numpy(tone(1.0, CONFIG.sample_rate, freq=440.0))
    log_mel = LogMelSpectrogram(CONFIG)(audio)
    centres = mel_band_edges(CONFIG)[1:-1]
    expected = int(np.argmin(np.abs(centres - 440.0)))
    middle = log_mel[log_mel.shape[0] // 2]
    assert int(middle.argmax()) == expected
