"""Training-time audio augmentation: another room, another microphone, another level.

A transcriber trained on one rendering chain learns that chain's colour. Each training
excerpt is changed, independently and with its own draws, by:

* **gain**: a level in decibels, uniform in ``±gain_db``;
* **EQ**: a low shelf, a high shelf and up to two peaks, each uniform in ``±eq_db``;
  peaks log-uniform in frequency with a Q from 0.7 to 3. Applied as a zero-phase
  magnitude response in the frequency domain, so nothing moves in time;
* **noise**: white noise at a signal-to-noise ratio uniform in ``snr_db``, relative to
  the excerpt's own RMS;
* **room**: a synthetic reverberant tail, exponentially decaying noise (RT60 uniform
  in ``rt60``) after a short predelay, mixed with the dry excerpt (the direct path) at
  a wet level uniform in ``wet``. It is causal, so onsets stay where the labels put
  them.

Each is applied with its probability. Every draw comes from the generator it is given,
so the batch of a step is a function of (seed, step) and a resumed run is still exact.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from wavegen_core.param_types import Probability, Strict

# Where the shelves turn over (Hz), drawn log-uniformly in these ranges.
LOW_SHELF_HZ = (80.0, 400.0)
HIGH_SHELF_HZ = (2000.0, 6000.0)
PEAK_HZ = (150.0, 6000.0)
PEAK_Q = (0.7, 3.0)
# The room's direct path is followed by its reverberant tail after this long.
ROOM_PREDELAY_SECONDS = (0.002, 0.02)


class AugmentConfig(Strict):
    """Training-time audio augmentation of the transcriber's excerpts (see the module)."""

    enabled: bool = False
    gain_db: float = Field(6.0, ge=0.0, le=40.0)
    eq_probability: Probability = 0.5
    eq_db: float = Field(6.0, ge=0.0, le=24.0)
    noise_probability: Probability = 0.3
    snr_db: tuple[float, float] = (25.0, 50.0)
    room_probability: Probability = 0.5
    rt60: tuple[float, float] = (0.2, 1.5)
    wet: tuple[float, float] = (0.05, 0.4)


def _uniform(generator: torch.Generator, low: float, high: float, size: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)


def _log_uniform(generator: torch.Generator, low: float, high: float) -> float:
    return math.exp(float(_uniform(generator, math.log(low), math.log(high))))


def eq_response(
    frequencies: torch.Tensor, generator: torch.Generator, eq_db: float
) -> torch.Tensor:
    """A random EQ's gain (linear) at ``frequencies`` (Hz): two shelves and up to two
    peaks, smooth in log frequency."""
    octaves = torch.log2(frequencies.clamp(min=1.0))
    gain_db = torch.zeros_like(frequencies, dtype=torch.float64)
    low = math.log2(_log_uniform(generator, *LOW_SHELF_HZ))
    high = math.log2(_log_uniform(generator, *HIGH_SHELF_HZ))
    low_db, high_db = _uniform(generator, -eq_db, eq_db, 2).tolist()
    gain_db += low_db * torch.sigmoid(-(octaves - low) * 4.0)
    gain_db += high_db * torch.sigmoid((octaves - high) * 4.0)
    for _ in range(int(torch.randint(3, (1,), generator=generator))):
        centre = math.log2(_log_uniform(generator, *PEAK_HZ))
        q = float(_uniform(generator, *PEAK_Q))
        # A bandwidth of 1/Q octaves at half the peak's decibels.
        width = 1.0 / q / (2 * math.sqrt(2 * math.log(2)))
        peak_db = float(_uniform(generator, -eq_db, eq_db))
        gain_db += peak_db * torch.exp(-0.5 * ((octaves - centre) / width) ** 2)
    return (10.0 ** (gain_db / 20.0)).to(torch.float32)


def room_response(generator: torch.Generator, rt60: float, sample_rate: int) -> torch.Tensor:
    """A synthetic room's reverberant tail: noise falling by 60 dB in ``rt60`` seconds,
    starting after a short predelay, with unit energy (the direct path is the dry
    signal, mixed in by :func:`augment`)."""
    length = max(int(rt60 * sample_rate), 2)
    predelay = int(float(_uniform(generator, *ROOM_PREDELAY_SECONDS)) * sample_rate)
    t = torch.arange(length, dtype=torch.float32) / sample_rate
    tail = torch.randn(length, generator=generator) * torch.exp(-6.9078 * t / rt60)
    tail = tail / tail.norm().clamp(min=1e-12)
    response = torch.zeros(predelay + length)
    response[predelay:] = tail
    return response


def augment(
    audio: torch.Tensor, generator: torch.Generator, config: AugmentConfig, sample_rate: int
) -> torch.Tensor:
    """``audio`` (batch, samples), each excerpt changed by its own draws; same shape."""
    if not config.enabled:
        return audio
    samples = audio.shape[-1]
    out = []
    frequencies = torch.fft.rfftfreq(samples, 1.0 / sample_rate)
    for clip in audio.to(torch.float32):
        if float(_uniform(generator, 0.0, 1.0)) < config.room_probability:
            rt60 = float(_uniform(generator, *config.rt60))
            wet = float(_uniform(generator, *config.wet))
            response = room_response(generator, rt60, sample_rate)
            size = 1 << (samples + len(response) - 2).bit_length()
            tail = torch.fft.irfft(
                torch.fft.rfft(clip, size) * torch.fft.rfft(response, size), size
            )[:samples]
            clip = (1.0 - wet) * clip + wet * tail * clip.norm() / tail.norm().clamp(min=1e-12)
        if float(_uniform(generator, 0.0, 1.0)) < config.eq_probability:
            response = eq_response(frequencies, generator, config.eq_db)
            clip = torch.fft.irfft(torch.fft.rfft(clip) * response, samples)
        if float(_uniform(generator, 0.0, 1.0)) < config.noise_probability:
            snr = float(_uniform(generator, *config.snr_db))
            rms = clip.square().mean().sqrt()
            noise = torch.randn(samples, generator=generator)
            clip = clip + noise * rms * 10.0 ** (-snr / 20.0)
        gain = float(_uniform(generator, -config.gain_db, config.gain_db))
        out.append(clip * 10.0 ** (gain / 20.0))
    return torch.stack(out).to(audio.dtype)
