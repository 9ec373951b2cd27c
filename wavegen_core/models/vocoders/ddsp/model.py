"""A polyphonic DDSP piano (Engel et al. 2020): oscillators and filtered noise a network steers.

Differentiable digital signal processing puts the sound's physics in the model and
leaves only its control to learning. Here the MIDI already says which keys sound and
when, so the network does not have to discover pitch: every key that sounds gets a
bank of sinusoids at its partials, and a small network shared by all 88 keys decides,
frame by frame, how loud the note is, how its energy spreads over the partials, and
how much filtered noise (hammer, damper) it adds. Read top to bottom:

* **Key state** (:func:`~wavegen_core.models.oscillators.key_state`): from the roll
  (onset, sounding, velocity per key, and the sustain pedal) each key's velocity, time
  since its onset, time since its release, whether it is held, whether the pedal is
  down (every damper lifted: the strings ring in sympathy), and whether it still rings
  (held, or released less than ``release_seconds`` ago). Computed for a whole piece
  at frame rate, so a note begun before a chunk or a training excerpt has its true age.
* **Control network** (:class:`KeyControl`): a perceptron over each key's state and its
  position on the keyboard gives, per key and frame, an amplitude, a distribution over
  ``harmonics`` partials and the gains of ``noise_bands`` noise bands (DDSP's
  ``exp_sigmoid`` scaling).
* **Oscillator bank** (:func:`~wavegen_core.models.oscillators.oscillator_bank`):
  partial k of a key with fundamental f0 at ``k f0 sqrt(1 + B k^2)`` (the stiff
  string; Fletcher 1964), B per key measured on the training audio
  (:mod:`~wavegen_core.models.vocoders.ddsp.inharmonicity`), then learnt; partials at or above
  Nyquist are silent. Phases are those of the absolute sample index, so any chunk of a
  piece is the same as that part of the whole.
* **Filtered noise**: white noise from a hash of the sample index, through fixed
  band-pass FIRs (log-spaced bands), each band scaled by the keys' summed gains.
* **Reverb**: a learnt impulse response of ``reverb_seconds`` convolved with the dry
  sum and added to it (DDSP's reverb); chunks carry the tail into the next.

Training compares the render with the true audio by the multi-resolution STFT
distance (:func:`wavegen_core.audio.spectral.multi_resolution_stft`). With
``adversarial_from`` set it is fine-tuned adversarially from that step on, against the
GAN family's discriminators (:class:`DdspSpec`): a discriminator step on the true audio
and the render, then a step of the piano on the spectral distance plus the adversarial
and feature-matching terms.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.audio.spectral import multi_resolution_stft
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.spec import Optimiser, PhaseLoss, TrainingPair
from wavegen_core.models.vocoders.adversarial import (
    DiscriminatedSpec,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminators_loss,
    generator_terms,
)
from wavegen_core.models.vocoders.conditioning import split_history
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.ddsp.config import DdspConfig
from wavegen_core.models.vocoders.ddsp.inharmonicity import estimate_inharmonicity
from wavegen_core.models.vocoders.oscillators import (
    STATE_FEATURES,
    KeyState,
    frame_columns,
    hashed_noise,
    interpolated_sum,
    key_state,
    oscillator_bank,
    ramps,
)
from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.progress import progress_bar

# Lowest band edge of the noise filters (Hz); the top one ends at Nyquist.
NOISE_LOW_HZ = 100.0
# The amplitude nonlinearity of DDSP: 2 sigmoid(x)^log(10) + 1e-7, from 1e-7 to 2.
EXP_SIGMOID_MAX = 2.0
EXP_SIGMOID_FLOOR = 1e-7


# --------------------------------------------------------------------------- control


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's positive scaling of network outputs (Engel et al. 2020, appendix B.5)."""
    return EXP_SIGMOID_MAX * torch.sigmoid(x) ** math.log(10.0) + EXP_SIGMOID_FLOOR


class KeyControl(nn.Module):
    """Key state (..., STATE_FEATURES) and key index -> amplitude, partial distribution
    and noise-band gains, one perceptron shared by every key."""

    def __init__(self, config: DdspConfig) -> None:
        super().__init__()
        self.harmonics = config.harmonics
        self.noise_bands = config.noise_bands
        # The key's place on the keyboard: a learnt embedding (timbre changes along it).
        self.key_embedding = nn.Embedding(KEY_COUNT, config.hidden)
        layers: list[nn.Module] = [nn.Linear(STATE_FEATURES, config.hidden)]
        self.input = layers[0]
        hidden: list[nn.Module] = []
        for _ in range(config.layers):
            hidden += [nn.LayerNorm(config.hidden), nn.LeakyReLU(0.1)]
            hidden.append(nn.Linear(config.hidden, config.hidden))
        self.hidden = nn.Sequential(*hidden, nn.LayerNorm(config.hidden), nn.LeakyReLU(0.1))
        self.output = nn.Linear(config.hidden, 1 + config.harmonics + config.noise_bands)
        # Start from a plausible sound: a moderate level, partial k's energy falling
        # as 1/k^2 (a struck string), little noise.
        with torch.no_grad():
            self.output.weight.mul_(0.1)
            k = torch.arange(1, config.harmonics + 1, dtype=torch.float32)
            self.output.bias.zero_()
            self.output.bias[0] = -1.0
            self.output.bias[1 : 1 + config.harmonics] = -2.0 * torch.log(k)
            self.output.bias[1 + config.harmonics :] = -3.0

    def forward(
        self, features: torch.Tensor, keys: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features`` (batch, keys, frames, STATE_FEATURES) of the keys ``keys`` (keys,)
        -> amplitude (batch, keys, frames), partial distribution (batch, keys, frames,
        harmonics) summing to 1, noise gains (batch, keys, frames, noise_bands)."""
        embedded = self.input(features) + self.key_embedding(keys)[None, :, None, :]
        out = self.output(self.hidden(embedded))
        amplitude = exp_sigmoid(out[..., 0])
        distribution = torch.softmax(out[..., 1 : 1 + self.harmonics], dim=-1)
        noise = exp_sigmoid(out[..., 1 + self.harmonics :]) * 0.1
        return amplitude, distribution, noise


# --------------------------------------------------------------------------- noise


def noise_filters(bands: int, taps: int, sample_rate: int) -> np.ndarray:
    """``bands`` band-pass FIRs (bands, taps), Hann-windowed sinc differences, with edges
    log-spaced from NOISE_LOW_HZ to Nyquist."""
    nyquist = sample_rate / 2
    edges = np.geomspace(NOISE_LOW_HZ, nyquist, bands + 1)
    centre = (taps - 1) / 2
    n = np.arange(taps) - centre
    window = np.hanning(taps)

    def lowpass(cutoff: float) -> np.ndarray:
        if cutoff >= nyquist:
            impulse = np.zeros(taps)
            impulse[int(centre)] = 1.0
            return impulse
        response = np.sinc(2 * cutoff / sample_rate * n) * window
        return response / response.sum()  # unit gain at DC, so every band has none

    filters = [
        lowpass(high) - lowpass(low) for low, high in zip(edges[:-1], edges[1:], strict=True)
    ]
    return np.stack(filters).astype(np.float32)


# --------------------------------------------------------------------------- the model


class DdspPiano(nn.Module):
    """Audio (batch, frames * hop_length) from a piano roll (batch, ROLL_CHANNELS, frames).

    With ``config.adversarial_from`` set and ``discriminators`` True (training), it also
    holds the GAN family's discriminators, ``mpd`` and ``msd``; inference loads none.
    """

    def __init__(
        self,
        config: DdspConfig,
        conditioning: ConditioningConfig,
        sample_rate: int,
        discriminators: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate
        self.hop_length = conditioning.hop_length
        self.frames_per_second = sample_rate / conditioning.hop_length
        self.control = KeyControl(config)
        low, high = config.inharmonicity
        self.log_inharmonicity = nn.Parameter(
            torch.linspace(math.log(low), math.log(high), KEY_COUNT)
        )
        midi = torch.arange(KEY_COUNT, dtype=torch.float64) + LOWEST_KEY
        self.register_buffer("fundamentals", 440.0 * 2.0 ** ((midi - 69) / 12), persistent=False)
        self.register_buffer(
            "filters",
            torch.from_numpy(noise_filters(config.noise_bands, config.noise_taps, sample_rate)),
            persistent=False,
        )
        taps = round(config.reverb_seconds * sample_rate)
        # A decaying noise tail, quiet at first: the dry sound dominates until trained.
        decay = torch.exp(-torch.arange(taps) / max(taps / 6.0, 1.0))
        self.reverb = nn.Parameter(1e-3 * torch.randn(taps) * decay)
        self.mpd: MultiPeriodDiscriminator | None = None
        self.msd: MultiScaleDiscriminator | None = None
        if discriminators and config.adversarial_from is not None:
            self.mpd = MultiPeriodDiscriminator(config.periods, config.discriminator_channels)
            self.msd = MultiScaleDiscriminator(config.scales, config.discriminator_channels)

    fundamentals: torch.Tensor
    filters: torch.Tensor

    @property
    def history_frames(self) -> int:
        """Frames of the roll before an excerpt that training reads for the keys' state."""
        return self.config.history_frames

    def key_state(self, roll: torch.Tensor) -> KeyState:
        return key_state(
            roll, self.frames_per_second, self.config.onset_seconds, self.config.release_seconds
        )

    def partial_frequencies(self, keys: torch.Tensor) -> torch.Tensor:
        """Partial frequencies in Hz (keys, harmonics), float64: k f0 sqrt(1 + B k^2)."""
        k = torch.arange(1, self.config.harmonics + 1, dtype=torch.float64, device=keys.device)
        inharmonicity = self.log_inharmonicity[keys].exp().to(torch.float64)
        stretch = torch.sqrt(1.0 + inharmonicity[:, None] * k**2)
        return self.fundamentals[keys][:, None] * k * stretch

    def dry(
        self, roll: torch.Tensor, state: KeyState, first_frame: int, frames: int, origin: int
    ) -> torch.Tensor:
        """The dry render (batch, frames * hop) of frames ``first_frame ..`` of ``roll``,
        whose keys' ``state`` is given for the whole roll; oscillator phases and noise
        count samples from ``origin`` (the piece's start when rendering)."""
        hop = self.hop_length
        batch, samples = roll.shape[0], frames * hop
        start = first_frame * hop
        # Frames first .. first + frames, the last one for interpolation (held at the end).
        columns = frame_columns(first_frame, frames, roll.shape[-1], roll.device)
        ringing = state.ringing[..., columns]
        active = ringing.amax(dim=(0, 2)).nonzero().flatten()
        if len(active) == 0:
            return roll.new_zeros(batch, samples)
        amplitude, distribution, noise = self.control(
            state.features[:, active][:, :, columns], active
        )
        ringing = ringing[:, active]
        # Partials at or above Nyquist are silenced.
        frequencies = self.partial_frequencies(active)
        audible = (frequencies < self.sample_rate / 2).to(distribution.dtype)
        partials = amplitude.unsqueeze(-1) * distribution * audible[None, :, None, :]
        keys, harmonics = frequencies.shape
        now, then = ramps(partials.permute(0, 1, 3, 2), ringing.unsqueeze(2))
        harmonic = oscillator_bank(
            now.reshape(batch, keys * harmonics, -1),
            then.reshape(batch, keys * harmonics, -1),
            frequencies.reshape(1, -1),
            start - origin,
            hop,
            self.sample_rate,
        )[:, 0]
        # Noise gains summed over the keys: (batch, bands, frames) at start and end.
        now, then = ramps(noise.permute(0, 1, 3, 2), ringing.unsqueeze(2))
        taps = self.filters.shape[-1]
        white = hashed_noise(start - origin - (taps - 1) // 2, samples + taps - 1, roll.device)
        bands = F.conv1d(white[None, None], self.filters.flip(-1)[:, None])[0]
        return harmonic + interpolated_sum(now.sum(dim=1), then.sum(dim=1), bands)

    def add_reverb(
        self, dry: torch.Tensor, tail: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``dry`` (batch, samples) plus its reverb and the ``tail`` earlier chunks left;
        returns the output and the tail (batch, taps - 1) the next chunk inherits."""
        taps = self.reverb.shape[0]
        if taps == 0:
            return dry, dry.new_zeros(dry.shape[0], 0)
        samples = dry.shape[-1]
        size = samples + taps - 1
        n = 1 << (size - 1).bit_length()
        wet = torch.fft.irfft(torch.fft.rfft(dry, n) * torch.fft.rfft(self.reverb, n), n)[
            ..., :size
        ]
        if tail is not None:
            wet = wet + F.pad(tail, (0, size - tail.shape[-1]))[..., :size]
        return dry + wet[..., :samples], wet[..., samples:]

    def forward(self, roll: torch.Tensor, history: int = 0) -> torch.Tensor:
        """Frames ``history ..`` of ``roll`` rendered in one pass (batch, samples), the
        frames before read only for the keys' state: what training compares."""
        state = self.key_state(roll)
        frames = roll.shape[-1] - history
        dry = self.dry(roll, state, history, frames, origin=history * self.hop_length)
        return self.add_reverb(dry, None)[0]

    def loss(
        self, audio: torch.Tensor, roll: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Multi-resolution STFT distance of the render to ``audio`` (batch, samples);
        ``roll`` may hold frames before the audio's (``config.history_frames``)."""
        rendered = self(roll, split_history(audio, roll, self.hop_length))
        distances = multi_resolution_stft(rendered, audio)
        return distances["total"], {
            name: value.detach() for name, value in distances.items() if name != "total"
        }

    # ------------------------------------------------------------------ adversarial

    def piano_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that make audio (all but the discriminators')."""
        return (p for name, p in self.named_parameters() if not name.startswith(("mpd.", "msd.")))

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return chain(*(disc.parameters() for disc in self._discriminators()))

    def _discriminators(self) -> tuple[nn.Module, nn.Module]:
        if self.mpd is None or self.msd is None:
            raise RuntimeError("this DDSP piano has no discriminators (adversarial_from is unset)")
        return self.mpd, self.msd

    def discriminator_loss(
        self, audio: torch.Tensor, roll: torch.Tensor, carry: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminators' least-squares loss on ``audio`` and the render (detached);
        the render, with its graph, is left in ``carry["fake"]`` for :meth:`piano_loss`."""
        fake = self(roll, split_history(audio, roll, self.hop_length))
        carry["fake"] = fake
        loss = discriminators_loss(self._discriminators(), audio, fake)
        return loss, {"discriminator": loss.detach()}

    def piano_loss(
        self, audio: torch.Tensor, roll: torch.Tensor, carry: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The spectral distance of the render; once the discriminators train (their step
        left the render in ``carry``), plus ``adversarial_weight`` x (adversarial + 2 x
        feature matching) against them."""
        fake = carry.get("fake")
        if fake is None:
            return self.loss(audio, roll)
        distances = multi_resolution_stft(fake, audio)
        adversarial, matching = generator_terms(self._discriminators(), audio, fake)
        total = distances["total"] + self.config.adversarial_weight * (adversarial + 2 * matching)
        extras = {name: value.detach() for name, value in distances.items() if name != "total"}
        extras["spectral"] = distances["total"].detach()
        extras["generator_adversarial"] = adversarial.detach()
        extras["feature_matching"] = matching.detach()
        return total, extras

    @torch.no_grad()
    def generate(
        self,
        roll: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
        progress: bool = False,
        history: int = 0,
        first_frame: int = 0,
    ) -> torch.Tensor:
        """Audio (batch, (frames - history) * hop_length) in [-1, 1] for a roll, rendered
        ``chunk_frames`` at a time: equal to one pass (the phases and the noise are those
        of the absolute sample, the reverb's tail is carried over), with memory bounded
        by the chunk. The first ``history`` frames give the keys' state only; the roll's
        first frame is frame ``first_frame`` of its piece. Deterministic: ``generator``
        and ``temperature`` are unused."""
        frames = roll.shape[-1]
        chunk = self.config.chunk_frames
        pieces = []
        tail: torch.Tensor | None = None
        bar = progress_bar(total=frames - history, desc="ddsp", unit="frame") if progress else None
        state = self.key_state(roll)
        for first in range(history, frames, chunk):
            count = min(chunk, frames - first)
            dry = self.dry(roll, state, first, count, origin=-first_frame * self.hop_length)
            out, tail = self.add_reverb(dry, tail)
            pieces.append(out.clamp(-1.0, 1.0))
            if bar is not None:
                bar.update(count)
        if bar is not None:
            bar.close()
        return torch.cat(pieces, dim=-1)


# --------------------------------------------------------------------------- spec


class DdspSpec(DiscriminatedSpec[DdspPiano]):
    """Adam on the spectral distance, its rate multiplied by ``lr_decay`` every
    ``lr_decay_every`` steps; with ``adversarial_from`` set, an optimiser per network:
    the discriminators' AdamW (HiFi-GAN's betas 0.8, 0.99), which joins at that step,
    then the piano's Adam. The discriminators are saved for resuming and left out of
    what inference loads."""

    def optimisers(
        self, model: DdspPiano, loop: TrainLoopConfig, saved: Mapping[str, Any]
    ) -> list[Optimiser]:
        section = self.section(saved)
        assert isinstance(section, DdspConfig)
        piano = torch.optim.Adam(
            model.piano_parameters(), lr=loop.learning_rate, weight_decay=loop.weight_decay
        )
        decay = torch.optim.lr_scheduler.StepLR(
            piano, step_size=section.lr_decay_every, gamma=section.lr_decay
        )
        if section.adversarial_from is None:
            return [Optimiser("", piano, decay)]
        discriminator = torch.optim.AdamW(
            model.discriminator_parameters(),
            lr=loop.learning_rate,
            betas=(0.8, 0.99),
            weight_decay=loop.weight_decay,
        )
        return [
            Optimiser("discriminator", discriminator, first_step=section.adversarial_from),
            Optimiser("piano", piano, decay),
        ]

    def initialise(self, model: DdspPiano, train: Sequence[TrainingPair]) -> None:
        """With ``measure_inharmonicity``, B per key from the training audio."""
        if not model.config.measure_inharmonicity:
            return
        measured = estimate_inharmonicity(
            train,
            model.sample_rate,
            model.hop_length,
            model.config.harmonics,
            model.config.inharmonicity,
        )
        with torch.no_grad():
            model.log_inharmonicity.copy_(torch.from_numpy(np.log(measured.inharmonicity)))

    def phase_losses(self, model: DdspPiano) -> dict[str, PhaseLoss] | None:
        if model.config.adversarial_from is None:
            return None
        return {"discriminator": model.discriminator_loss, "piano": model.piano_loss}


SPEC = DdspSpec(DdspConfig, DdspPiano)
