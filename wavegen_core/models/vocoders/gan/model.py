"""HiFi-GAN (Kong et al. 2020): an adversarial vocoder, here conditioned on the MIDI piano roll.

The generator is fully convolutional and non-autoregressive: the frame-rate features of
the roll (:meth:`ConditioningNetwork.encode`) are upsampled to the sample rate by
transposed convolutions, each followed by a multi-receptive-field fusion (the mean of
residual blocks with different kernels and dilations), so a whole excerpt is made in
one pass. It is the only upsampler: the conditioning network's own is not used.

Two discriminators judge the audio (section 2.2 of the paper): the multi-period one
looks at every ``p``-th sample for several prime ``p`` (periodic structure), the
multi-scale one (MelGAN's, Kumar et al. 2019) at the raw and average-pooled audio
(structure at several time scales). The losses (section 2.3) are least-squares
adversarial ones, feature matching between the discriminators' maps on real and
generated audio, and an L1 distance between log-mel spectrograms.

Training alternates, as HiFi-GAN's does, a discriminator update and a generator update
per batch, each network with its own AdamW and learning-rate decay (:class:`GanSpec`;
the shared loop steps the two in order): the discriminator's loss sees the generated
audio detached, and the generator's losses, computed against the updated
discriminators, see them with their parameters detached.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig
from wavegen_core.models.blocks import DilatedConv1d
from wavegen_core.models.spec import Optimiser, PhaseLoss
from wavegen_core.models.vocoders.adversarial import (
    LEAKY_SLOPE,
    DiscriminatedSpec,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminators_loss,
    generator_terms,
)
from wavegen_core.models.vocoders.conditioning import ConditioningNetwork, split_history
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.gan.config import GanConfig
from wavegen_core.param_types import TrainLoopConfig

# HiFi-GAN initialises its generator's convolutions from N(0, 0.01).
INIT_STD = 0.01
# conv_pre and conv_post of the generator (HiFi-GAN V1).
EDGE_KERNEL = 7


# --------------------------------------------------------------------------- building blocks


def _weight_normed(conv: nn.Module) -> nn.Module:
    """``conv`` initialised as HiFi-GAN's generator, then weight-normalised (Salimans 2016)."""
    assert isinstance(conv, nn.Conv1d | nn.ConvTranspose1d)
    nn.init.normal_(conv.weight, 0.0, INIT_STD)
    return weight_norm(conv)


class ResBlock(nn.Module):
    """HiFi-GAN V1's ResBlock1: per dilation, LeakyReLU, dilated conv, LeakyReLU, conv, added back.

    Centred convolutions keep the length; ``channels`` is both input and output width.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            _weight_normed(DilatedConv1d(channels, channels, kernel_size, d, causal=False))
            for d in dilations
        )
        self.plain = nn.ModuleList(
            _weight_normed(DilatedConv1d(channels, channels, kernel_size, causal=False))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain, strict=True):
            hidden = dilated(F.leaky_relu(x, LEAKY_SLOPE))
            x = x + plain(F.leaky_relu(hidden, LEAKY_SLOPE))
        return x


class MultiReceptiveFieldFusion(nn.Module):
    """The mean of one :class:`ResBlock` per kernel size (section 2.1): several receptive fields."""

    def __init__(
        self, channels: int, kernel_sizes: Sequence[int], dilations: Sequence[Sequence[int]]
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResBlock(channels, kernel, block_dilations)
            for kernel, block_dilations in zip(kernel_sizes, dilations, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.blocks[0](x)
        for block in self.blocks[1:]:
            total = total + block(x)
        return total / len(self.blocks)


# --------------------------------------------------------------------------- generator


class Generator(nn.Module):
    """Frame-rate features (batch, in_channels, frames) -> audio (batch, frames * hop_length).

    conv_pre to ``initial_channels``; per upsampling rate a LeakyReLU, a transposed
    convolution that multiplies the length by the rate and halves the width, and a
    multi-receptive-field fusion; then LeakyReLU, conv_post to one channel and tanh.

    With ``source_channels``, a sample-rate excitation (batch, source_channels, samples)
    enters every stage before its fusion, brought to that stage's rate by a strided
    convolution (stride = the product of the later rates; kernel twice that), as the
    source-filter HiFi-GANs of singing synthesis add their harmonic source.
    """

    def __init__(self, config: GanConfig, in_channels: int, source_channels: int = 0) -> None:
        super().__init__()
        width = config.initial_channels
        self.hop_length = math.prod(config.upsample_rates)
        self.conv_pre = _weight_normed(DilatedConv1d(in_channels, width, EDGE_KERNEL, causal=False))
        self.upsamples = nn.ModuleList()
        self.fusions = nn.ModuleList()
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            # Output length (n - 1) * rate - 2 * padding + kernel = n * rate exactly;
            # GanConfig checks that kernel - rate is even and non-negative.
            self.upsamples.append(
                _weight_normed(
                    nn.ConvTranspose1d(
                        width, width // 2, kernel, stride=rate, padding=(kernel - rate) // 2
                    )
                )
            )
            width //= 2
            self.fusions.append(
                MultiReceptiveFieldFusion(
                    width, config.resblock_kernel_sizes, config.resblock_dilations
                )
            )
        self.conv_post = _weight_normed(DilatedConv1d(width, 1, EDGE_KERNEL, causal=False))
        self.source_convs = nn.ModuleList()
        if source_channels:
            rates = config.upsample_rates
            width = config.initial_channels
            for index in range(len(rates)):
                width //= 2
                stride = math.prod(rates[index + 1 :])
                # Output length: exactly samples / stride (padding ceil(stride / 2)).
                self.source_convs.append(
                    nn.Conv1d(
                        source_channels,
                        width,
                        kernel_size=2 * stride if stride > 1 else 1,
                        stride=stride,
                        padding=(stride + 1) // 2 if stride > 1 else 0,
                    )
                )

    def forward(self, features: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv_pre(features)
        for index, (upsample, fusion) in enumerate(zip(self.upsamples, self.fusions, strict=True)):
            x = upsample(F.leaky_relu(x, LEAKY_SLOPE))
            if source is not None and self.source_convs:
                x = x + self.source_convs[index](source)
            x = fusion(x)
        x = self.conv_post(F.leaky_relu(x, LEAKY_SLOPE))
        return torch.tanh(x).squeeze(1)


# --------------------------------------------------------------------------- the vocoder


class GanVocoder(nn.Module):
    """A MIDI-conditioned HiFi-GAN: roll (batch, ROLL_CHANNELS, frames) -> audio (batch, samples).

    ``conditioning`` and ``generator`` make the audio; ``mpd`` and ``msd`` (multi-period
    and multi-scale discriminators) exist for training only: built with
    ``discriminators=False`` (what inference loads), the model holds neither.

    Training alternates two steps per batch, as HiFi-GAN does, each with its own
    optimiser (:class:`GanSpec`): the discriminators' on real audio and the generator's
    output, detached (:meth:`discriminator_loss`), then the generator's against the
    updated discriminators (:meth:`generator_loss`), reusing the audio the first step
    generated.
    """

    def __init__(
        self,
        config: GanConfig,
        conditioning: ConditioningConfig,
        sample_rate: int,
        discriminators: bool = True,
    ) -> None:
        super().__init__()
        config.check_conditioning(conditioning)
        self.config = config
        self.hop_length = conditioning.hop_length
        # The generator is the upsampler, and takes the excitation itself: the conditioning
        # network's upsampler and projection would be dead weight, so it has neither.
        self.conditioning = ConditioningNetwork(
            conditioning, sample_rate=sample_rate, upsampled=False
        )
        excitation = self.conditioning.excitation
        self.generator = Generator(
            config, conditioning.channels, 0 if excitation is None else excitation.channels
        )
        self.mpd: MultiPeriodDiscriminator | None = None
        self.msd: MultiScaleDiscriminator | None = None
        if discriminators:
            self.mpd = MultiPeriodDiscriminator(config.periods, config.discriminator_channels)
            self.msd = MultiScaleDiscriminator(config.scales, config.discriminator_channels)
        # HiFi-GAN's mel loss: L1 between log-magnitude mels (its `mel_spectrogram`,
        # log(clamp(mel, 1e-5)) of the magnitude's mel), over the whole band.
        self.mel = LogMelSpectrogram(
            MelConfig(
                sample_rate=sample_rate,
                n_fft=config.mel_n_fft,
                hop_length=config.mel_hop_length,
                n_mels=config.mel_bins,
                fmin=0.0,
                fmax=sample_rate / 2,
            ),
            magnitude=True,
        )

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that make audio: the conditioning network's and the generator's."""
        return chain(self.conditioning.parameters(), self.generator.parameters())

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return chain(*(disc.parameters() for disc in self._discriminators()))

    def _discriminators(self) -> tuple[nn.Module, nn.Module]:
        if self.mpd is None or self.msd is None:
            raise RuntimeError("this GAN was built for inference, without its discriminators")
        return self.mpd, self.msd

    @property
    def history_frames(self) -> int:
        """Frames of the roll before the audio that the conditioning reads."""
        return self.conditioning.history_frames

    def forward(self, roll: torch.Tensor, history: int = 0, first_frame: int = 0) -> torch.Tensor:
        """Roll (batch, ROLL_CHANNELS, frames) -> audio (batch, (frames - history) *
        hop_length) in [-1, 1]; the first ``history`` frames feed the excitation only."""
        features = self.conditioning.encode(roll[..., history:])
        return self.generator(features, self.conditioning.source(roll, history, first_frame))

    def _fake(self, audio: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
        return self(roll, split_history(audio, roll, self.hop_length))

    def discriminator_loss(
        self, audio: torch.Tensor, roll: torch.Tensor, carry: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminators' least-squares loss on ``audio`` and the generator's output
        for ``roll``, detached. The output (with its graph) is left in ``carry["fake"]``
        for :meth:`generator_loss`."""
        fake = self._fake(audio, roll)
        carry["fake"] = fake
        loss = discriminators_loss(self._discriminators(), audio, fake)
        return loss, {"discriminator": loss.detach()}

    def generator_loss(
        self, audio: torch.Tensor, roll: torch.Tensor, carry: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's loss against the discriminators as they are now: adversarial
        + ``feature_matching_weight`` x feature matching + ``mel_weight`` x mel L1 (HiFi-GAN
        eq. 6), on the audio :meth:`discriminator_loss` generated (generated anew when
        ``carry`` has none). The discriminators' parameters get no gradient."""
        fake = carry.get("fake")
        if fake is None:
            fake = self._fake(audio, roll)
        adversarial, matching = generator_terms(self._discriminators(), audio, fake)
        mel_l1 = (self.mel(audio) - self.mel(fake)).abs().mean()
        total = (
            adversarial
            + self.config.feature_matching_weight * matching
            + self.config.mel_weight * mel_l1
        )
        terms = {"generator_adversarial": adversarial, "feature_matching": matching}
        return total, {**{k: v.detach() for k, v in terms.items()}, "mel_l1": mel_l1.detach()}

    def loss(
        self, audio: torch.Tensor, roll: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Both steps' losses on one batch, as validation reports them: their sum, and the
        terms (unweighted). Training takes the two steps apart (see the class)."""
        carry: dict[str, Any] = {}
        discriminator, terms = self.discriminator_loss(audio, roll, carry)
        generator, generator_terms = self.generator_loss(audio, roll, carry)
        return discriminator + generator, {**terms, **generator_terms}

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
        """Roll (batch, ROLL_CHANNELS, frames) -> audio (batch, (frames - history) *
        hop_length), in one pass; the roll's first frame is frame ``first_frame`` of its
        piece (the excitation's phases).

        Deterministic: ``generator``, ``temperature`` and ``progress`` exist for the
        interface the vocoder families share and are unused (nothing is sampled, and one
        pass has no steps to show). Pieces longer than memory allows are chunked by the
        caller, with ``conditioning.context_frames`` of context.
        """
        # Weight norm recomputes each weight at every use; once per call is enough.
        with parametrize.cached():
            return self(roll, history, first_frame)


# --------------------------------------------------------------------------- spec


class GanSpec(DiscriminatedSpec[GanVocoder]):
    """HiFi-GAN's optimisation: an AdamW per network with the section's betas, each with
    its own exponential learning-rate decay (``lr_decay`` every ``lr_decay_every``
    steps; HiFi-GAN: 0.999 per epoch), stepped discriminator first. The discriminators
    are saved for resuming and left out of what inference loads."""

    def optimisers(
        self, model: GanVocoder, loop: TrainLoopConfig, saved: Mapping[str, Any]
    ) -> list[Optimiser]:
        section = self.section(saved)
        assert isinstance(section, GanConfig)
        optimisers = []
        for name, parameters in (
            ("discriminator", model.discriminator_parameters()),
            ("generator", model.generator_parameters()),
        ):
            optimiser = torch.optim.AdamW(
                parameters,
                lr=loop.learning_rate,
                betas=section.adam_betas,
                weight_decay=loop.weight_decay,
            )
            decay = torch.optim.lr_scheduler.StepLR(
                optimiser, step_size=section.lr_decay_every, gamma=section.lr_decay
            )
            optimisers.append(Optimiser(name, optimiser, decay))
        return optimisers

    def phase_losses(self, model: GanVocoder) -> dict[str, PhaseLoss]:
        return {"discriminator": model.discriminator_loss, "generator": model.generator_loss}


SPEC = GanSpec(GanConfig, GanVocoder)
