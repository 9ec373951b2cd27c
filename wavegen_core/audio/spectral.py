"""Spectral distances between two waveforms: multi-resolution STFT and log-mel L1.

The multi-resolution STFT distance of Parallel WaveGAN (Yamamoto et al. 2020,
section 2.3) compares magnitude spectra at several FFT sizes, so that neither time
nor frequency resolution alone decides: per resolution, the spectral convergence
``|| |S| - |Ŝ| ||_F / || |S| ||_F`` plus the mean absolute difference of log
magnitudes, averaged over the resolutions. Written in torch so that the same code is
a differentiable loss and, under ``no_grad``, a metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig


@dataclass(frozen=True)
class Resolution:
    n_fft: int
    hop_length: int
    win_length: int


# Yamamoto et al. 2020, table 1 (FFT size, frame shift, window length).
PARALLEL_WAVEGAN_RESOLUTIONS = (
    Resolution(1024, 120, 600),
    Resolution(2048, 240, 1200),
    Resolution(512, 50, 240),
)
# Magnitudes below this are treated as this, so that silence has a finite log.
MAGNITUDE_FLOOR = 1e-7


def _magnitude(audio: torch.Tensor, resolution: Resolution) -> torch.Tensor:
    window = torch.hann_window(resolution.win_length, device=audio.device, dtype=audio.dtype)
    spectrum = torch.stft(
        audio,
        n_fft=resolution.n_fft,
        hop_length=resolution.hop_length,
        win_length=resolution.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spectrum.abs().clamp_min(MAGNITUDE_FLOOR)


def _batched(audio: torch.Tensor) -> torch.Tensor:
    if audio.dim() == 1:
        return audio.unsqueeze(0)
    if audio.dim() != 2:
        raise ValueError(
            f"expected audio of shape (samples,) or (batch, samples), got {audio.shape}"
        )
    return audio


def _check_shapes(estimate: torch.Tensor, reference: torch.Tensor) -> None:
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} "
            "differ in shape"
        )


def multi_resolution_stft(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    resolutions: tuple[Resolution, ...] = PARALLEL_WAVEGAN_RESOLUTIONS,
) -> dict[str, torch.Tensor]:
    """``spectral_convergence``, ``log_magnitude`` (L1) and their sum ``total``,
    each averaged over ``resolutions`` and the batch; equal-length inputs."""
    estimate, reference = _batched(estimate), _batched(reference)
    _check_shapes(estimate, reference)
    convergence = estimate.new_zeros(())
    log_magnitude = estimate.new_zeros(())
    for resolution in resolutions:
        est, ref = _magnitude(estimate, resolution), _magnitude(reference, resolution)
        difference = torch.linalg.matrix_norm(ref - est)
        convergence = convergence + (difference / torch.linalg.matrix_norm(ref)).mean()
        log_magnitude = log_magnitude + (ref.log() - est.log()).abs().mean()
    convergence = convergence / len(resolutions)
    log_magnitude = log_magnitude / len(resolutions)
    return {
        "spectral_convergence": convergence,
        "log_magnitude": log_magnitude,
        "total": convergence + log_magnitude,
    }


def evaluation_mel(sample_rate: int) -> MelConfig:
    """The mel spectrogram the vocoders are compared on: HiFi-GAN's (Kong et al. 2020):
    1,024-point FFT, hop 256, 80 bands from 0 Hz to the Nyquist frequency."""
    return MelConfig(
        sample_rate=sample_rate,
        n_fft=1024,
        hop_length=256,
        n_mels=80,
        fmin=0.0,
        fmax=sample_rate / 2,
    )


def mel_l1(estimate: torch.Tensor, reference: torch.Tensor, mel: MelConfig) -> torch.Tensor:
    """Mean absolute difference of the log-mel spectrograms of two equal-length signals."""
    estimate, reference = _batched(estimate), _batched(reference)
    _check_shapes(estimate, reference)
    spectrogram = LogMelSpectrogram(mel).to(estimate.device)
    return (spectrogram(estimate) - spectrogram(reference)).abs().mean()
