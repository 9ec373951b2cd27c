"""The log-mel spectrogram front end shared by the transcriber and the vocoders.

One implementation in torch, so that it runs on the model's device and inside its
``state_dict`` (the window and filterbank are buffers). Frame ``i`` is centred on
sample ``i * hop_length``: the signal is reflect-padded by ``n_fft // 2`` on both
sides, so ``n`` samples give ``n // hop_length + 1`` frames, and a frame's time is
``i / frames_per_second``. MIDI targets (``wavegen_core.midi.rolls``) use the same grid.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from wavegen_core.param_types import Strict


class MelConfig(Strict):
    """A log-mel spectrogram front end, shared by the transcriber and the vocoders.

    Defaults are the settings of Onsets and Frames (Hawthorne et al. 2018, section 3):
    16 kHz audio, a 2048-point FFT, hop 512 (31.25 frames per second) and 229 mel bins
    from 30 Hz to 8 kHz, except ``n_mels``, which the tiny profile shrinks to 64.
    """

    sample_rate: int = Field(16000, gt=0, le=192000)
    n_fft: int = Field(2048, ge=16, le=16384)
    # Frame rate = sample_rate / hop_length.
    hop_length: int = Field(512, gt=0, le=16384)
    n_mels: int = Field(64, ge=4, le=512)
    fmin: float = Field(30.0, ge=0.0)
    fmax: float = Field(8000.0, gt=0.0)
    # Added before the log so that silence maps to a finite floor.
    log_eps: float = Field(1e-5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _bands_fit(self) -> MelConfig:
        if self.fmax > self.sample_rate / 2:
            raise ValueError(
                f"fmax={self.fmax:g} is above the Nyquist frequency {self.sample_rate / 2:g}"
            )
        if self.fmin >= self.fmax:
            raise ValueError(f"fmin={self.fmin:g} must be below fmax={self.fmax:g}")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length={self.hop_length} exceeds n_fft={self.n_fft}")
        return self

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


def hz_to_mel(frequency: np.ndarray | float) -> np.ndarray:
    """The HTK mel scale (O'Shaughnessy 1987): 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(frequency, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(config: MelConfig) -> np.ndarray:
    """The ``n_mels + 2`` corner frequencies in Hz, evenly spaced in mel from fmin to fmax.

    Band ``k`` rises from edge ``k``, peaks at edge ``k + 1`` (its centre) and falls to
    edge ``k + 2``.
    """
    low, high = hz_to_mel(config.fmin), hz_to_mel(config.fmax)
    return mel_to_hz(np.linspace(low, high, config.n_mels + 2))


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """Triangular filters of shape (n_mels, n_fft // 2 + 1), each of unit area.

    Unit area (Slaney's normalisation) keeps a broadband signal at a similar level
    in every band although the high bands are wider.
    """
    fft_frequencies = np.linspace(0.0, config.sample_rate / 2, config.n_fft // 2 + 1)
    edges = mel_band_edges(config)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_frequencies - lower) / (centre - lower)
    falling = (upper - fft_frequencies) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return (triangles * (2.0 / (upper - lower))).astype(np.float32)


class LogMelSpectrogram(nn.Module):
    """Audio (batch, samples) or (samples,) -> log-mel (batch, frames, n_mels).

    Power spectrum of a Hann-windowed STFT, projected on the mel filterbank, then
    ``log(mel + log_eps)`` (Hawthorne et al. 2018, section 3, use log-mel input). With
    ``magnitude``, HiFi-GAN's: the magnitude spectrum's mel, ``log(max(mel, log_eps))``.
    """

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, config: MelConfig, magnitude: bool = False) -> None:
        super().__init__()
        self.config = config
        self.magnitude = magnitude
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.register_buffer(
            "filterbank", torch.from_numpy(mel_filterbank(config)), persistent=False
        )

    def frame_count(self, samples: int) -> int:
        """Number of frames produced for ``samples`` samples."""
        return samples // self.config.hop_length + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        batched = audio if audio.dim() == 2 else audio.unsqueeze(0)
        spectrum = torch.stft(
            batched,
            n_fft=self.config.n_fft,
            hop_length=self.config.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spectrum.abs().pow(2)  # (batch, bins, frames)
        if self.magnitude:
            # HiFi-GAN's `mel_spectrogram`: sqrt(power + 1e-9), then a clamp, not an offset.
            mel = torch.matmul(self.filterbank, torch.sqrt(power + 1e-9)).transpose(1, 2)
            log_mel = torch.log(mel.clamp(min=self.config.log_eps))
        else:
            mel = torch.matmul(self.filterbank, power).transpose(1, 2)
            log_mel = torch.log(mel + self.config.log_eps)
        return log_mel if audio.dim() == 2 else log_mel.squeeze(0)
