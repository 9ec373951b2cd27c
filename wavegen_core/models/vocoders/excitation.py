"""The harmonic excitation: a source signal at the sample rate rendered from the MIDI.

A neural source-filter vocoder (Wang et al. 2019) is given a sine-based source at the
right pitch and learns only the filter that shapes it. Here the MIDI says which keys
sound, so every sounding note adds sines at its harmonics: channel ``k - 1`` holds
harmonic ``k`` of every note, summed,

    e_k(n) = sum over notes of  a(n) sin(2 pi k f0 n / sample_rate),

where ``a`` is the note's velocity, falling by e every ``excitation_decay_seconds``
after the onset (for ``EXCITATION_MEMORY_DECAYS`` time constants, then held) and fading
to nothing over ``EXCITATION_RELEASE_SECONDS`` after the release. Harmonics at or above
Nyquist are silent. A last channel is noise shaped by a burst at each onset (the
hammer), ``velocity x exp(-t / ATTACK_SECONDS)``. Nothing here is learnt: the channels
are inputs, which each family projects (a 1x1 convolution, or strided ones into the
GAN's upsampling stages).

Phases and noise are those of the absolute sample index in the piece, so a chunk
rendered with the frames before it as history equals that part of one pass.
"""

from __future__ import annotations

import torch
from torch import nn

from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.vocoders.config import EXCITATION_RELEASE_SECONDS, ConditioningConfig
from wavegen_core.models.vocoders.oscillators import (
    KeyState,
    frame_columns,
    hashed_noise,
    interpolated_sum,
    key_state,
    oscillator_bank,
    ramps,
)

# The onset noise burst falls by e in this long (a hammer's thump is tens of ms).
ATTACK_SECONDS = 0.03


class HarmonicExcitation(nn.Module):
    """Roll (batch, ROLL_CHANNELS, frames) -> excitation (batch, channels, samples); see
    the module docstring. It has no parameters."""

    def __init__(self, config: ConditioningConfig, sample_rate: int) -> None:
        super().__init__()
        self.harmonics = config.excitation_harmonics
        self.decay_seconds = config.excitation_decay_seconds
        self.memory_seconds = config.excitation_memory_seconds()
        self.hop_length = config.hop_length
        self.sample_rate = sample_rate
        self.frames_per_second = sample_rate / config.hop_length
        self.history_frames = config.history_frames(sample_rate)
        midi = torch.arange(KEY_COUNT, dtype=torch.float64) + LOWEST_KEY
        self.register_buffer("fundamentals", 440.0 * 2.0 ** ((midi - 69) / 12), persistent=False)

    fundamentals: torch.Tensor

    @property
    def channels(self) -> int:
        """One channel per harmonic, and one of noise."""
        return self.harmonics + 1

    def state(self, roll: torch.Tensor) -> KeyState:
        """The keys' state over a whole roll (what :meth:`render` reads)."""
        return key_state(
            roll, self.frames_per_second, self.memory_seconds, EXCITATION_RELEASE_SECONDS
        )

    def partial_frequencies(self, keys: torch.Tensor) -> torch.Tensor:
        """Harmonic frequencies (harmonics, keys) in Hz, float64; 0 (silent) at or above
        Nyquist."""
        k = torch.arange(1, self.harmonics + 1, dtype=torch.float64, device=keys.device)
        frequencies = k[:, None] * self.fundamentals[keys][None, :]
        return torch.where(frequencies < self.sample_rate / 2, frequencies, 0.0)

    def render(
        self, state: KeyState, first_frame: int, frames: int, first_sample: int
    ) -> torch.Tensor:
        """The excitation (batch, channels, frames * hop) of frames ``first_frame ..`` of
        the roll whose ``state`` is given; its first sample is sample ``first_sample`` of
        the piece (phases and noise count from the piece's start)."""
        hop = self.hop_length
        ringing_all = state.ringing
        batch, samples = ringing_all.shape[0], frames * hop
        columns = frame_columns(first_frame, frames, ringing_all.shape[-1], ringing_all.device)
        ringing = ringing_all[..., columns]
        active = ringing.amax(dim=(0, 2)).nonzero().flatten()
        out = ringing.new_zeros(batch, self.channels, samples)
        if len(active) == 0:
            return out
        ringing = ringing[:, active]
        velocity = state.velocity[:, active][..., columns]
        since_onset = state.since_onset[:, active][..., columns]
        amplitude = velocity * torch.exp(-since_onset / self.decay_seconds)
        amplitude = amplitude * (1.0 - state.released[:, active][..., columns])
        now, then = ramps(amplitude, ringing)
        out[:, : self.harmonics] = oscillator_bank(
            now, then, self.partial_frequencies(active), first_sample, hop, self.sample_rate
        )
        burst = velocity * torch.exp(-since_onset / ATTACK_SECONDS)
        now, then = ramps(burst, ringing)
        noise = hashed_noise(first_sample, samples, ringing.device)[None]
        out[:, self.harmonics] = interpolated_sum(
            now.sum(dim=1, keepdim=True), then.sum(dim=1, keepdim=True), noise
        )
        return out

    def forward(self, roll: torch.Tensor, history: int = 0, first_frame: int = 0) -> torch.Tensor:
        """The excitation of frames ``history ..`` of ``roll``, whose first frame is frame
        ``first_frame`` of its piece; the frames before ``history`` give the notes' age."""
        frames = roll.shape[-1] - history
        return self.render(
            self.state(roll), history, frames, (first_frame + history) * self.hop_length
        )


def excitation_or_none(config: ConditioningConfig, sample_rate: int) -> HarmonicExcitation | None:
    """The excitation ``config`` asks for, if any."""
    if config.excitation == "harmonic":
        return HarmonicExcitation(config, sample_rate)
    return None
