"""MIDI conditioning for the vocoders: a piano roll, encoded and brought to the sample rate.

The roll itself is data (:func:`wavegen_core.data.pairs.conditioning_roll`); this module
holds the network that encodes it.

Every vocoder family (``wavenet``, ``flow``, ``gan``) is conditioned the same way
(Hawthorne et al. 2019 condition their WaveNet on the piano roll of the MIDI). The
roll has one frame per ``hop_length`` samples: frame ``i`` stands for samples
``i * hop_length`` to ``(i + 1) * hop_length``, so ``n`` frames condition exactly
``n * hop_length`` samples. Per key it holds three channels:

* ``onset``: 1 in the frame where a note starts, so the attack is placed to the frame;
* ``sounding``: 1 while the note lasts, the sustain pedal included;
* ``velocity``: the note's velocity / 127 while it sounds, so the decay knows its level.

:class:`ConditioningNetwork` encodes the roll with a few centred convolutions over
frames and upsamples the features to the sample rate, with learnt transposed
convolutions or by repeating each frame and smoothing with a convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.configs.vocoder import ConditioningConfig


def upsample_factors(hop_length: int, largest: int = 16) -> list[int]:
    """``hop_length`` as a product of few factors, each at most ``largest`` where the
    primes allow (256 -> [16, 16], 160 -> [16, 10], 250 -> [10, 5, 5])."""
    primes, rest, prime = [], hop_length, 2
    while rest > 1:
        while rest % prime == 0:
            primes.append(prime)
            rest //= prime
        prime += 1
    factors: list[int] = []
    for prime in sorted(primes, reverse=True):
        for index, factor in enumerate(factors):
            if factor * prime <= largest:
                factors[index] *= prime
                break
        else:
            factors.append(prime)
    return sorted(factors, reverse=True)


class ConditioningNetwork(nn.Module):
    """Roll (batch, ROLL_CHANNELS, frames) -> features (batch, channels, frames * hop_length).

    Any frame-rate input works the same way: ``in_channels`` (the roll's by default)
    is what the hierarchical WaveNet sets to its tier's code vectors.

    ``encode`` gives frame-rate features (what the GAN generator upsamples itself);
    ``upsample`` brings them to the sample rate (what the WaveNet and the flow add in
    every layer). ``context_frames`` is how many frames on either side of a frame
    can change its features, which is what chunked inference must carry along.
    """

    def __init__(self, config: ConditioningConfig, in_channels: int = ROLL_CHANNELS) -> None:
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        self.hop_length = config.hop_length
        self.channels = config.channels
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(config.layers):
            layers += [
                nn.Conv1d(width, config.channels, config.kernel_size, padding="same"),
                nn.LeakyReLU(0.1),
            ]
            width = config.channels
        self.encoder = nn.Sequential(*layers)
        self.factors = upsample_factors(config.hop_length)
        self.upsampler = nn.ModuleList()
        if config.upsample == "transposed":
            # One transposed convolution per factor (a single one with a kernel of 2 x
            # hop would hold 2 x hop x channels^2 weights); kernel 2 x factor, so each
            # output blends its input step with a neighbour and boundaries are smooth.
            for factor in self.factors:
                self.upsampler.append(
                    nn.ConvTranspose1d(
                        config.channels,
                        config.channels,
                        kernel_size=2 * factor,
                        stride=factor,
                        padding=factor // 2,
                    )
                )
        else:
            self.upsampler.append(
                nn.Conv1d(
                    config.channels,
                    config.channels,
                    kernel_size=2 * (config.hop_length // 2) + 1,
                    padding="same",
                )
            )

    @property
    def context_frames(self) -> int:
        """Frames on either side of a frame that its upsampled features depend on."""
        return self.config.layers * (self.config.kernel_size // 2) + 1

    def encode(self, roll: torch.Tensor) -> torch.Tensor:
        return self.encoder(roll)

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        if self.config.upsample == "repeat":
            return self.upsampler[0](features.repeat_interleave(self.hop_length, dim=-1))
        for index, (factor, layer) in enumerate(zip(self.factors, self.upsampler, strict=True)):
            if index:
                features = F.leaky_relu(features, 0.1)
            # An odd factor gives one sample more than factor x length: trimmed.
            features = layer(features)[..., : features.shape[-1] * factor]
        return features

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.encode(roll))


def crop_or_pad(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """``audio`` (..., time) cut or zero-padded at the end to ``samples`` samples."""
    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    return F.pad(audio, (0, samples - audio.shape[-1]))
