"""What the families trained against discriminators share: HiFi-GAN's discriminators
(Kong et al. 2020, section 2.2), the adversarial and feature-matching losses (section
2.3), and the spec of a family whose model carries them.

The multi-period discriminator looks at every ``p``-th sample for several prime ``p``
(periodic structure), the multi-scale one (MelGAN's, Kumar et al. 2019) at the raw and
average-pooled audio (structure at several time scales). The losses are least-squares
adversarial ones and feature matching between the discriminators' maps on real and
generated audio. The GAN and DDSP both train against them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from wavegen_core.models.spec import ModelT, VocoderSpec
from wavegen_core.models.vocoders.config import ConditioningConfig

# The slope of every LeakyReLU in HiFi-GAN's generator and discriminators.
LEAKY_SLOPE = 0.1
# Multi-period discriminator (section 2.2): four (5, 1) convolutions of stride (3, 1),
# then one of stride 1, widths as multiples of `discriminator_channels`. At
# discriminator_channels = 32 these are HiFi-GAN's 32, 128, 512, 1024, 1024.
PERIOD_WIDTHS = (1, 4, 16, 32, 32)
PERIOD_KERNEL = 5
PERIOD_STRIDE = 3
PERIOD_STRIDED_LAYERS = 4
# Multi-scale discriminator (MelGAN's, as HiFi-GAN uses it): per layer (width as a
# multiple of `discriminator_channels`, kernel, stride, groups). At
# discriminator_channels = 32 the widths are HiFi-GAN's 128 ... 1024.
SCALE_LAYERS = (
    (4, 15, 1, 1),
    (4, 41, 2, 4),
    (8, 41, 2, 16),
    (16, 41, 4, 16),
    (32, 41, 4, 16),
    (32, 41, 1, 16),
    (32, 5, 1, 1),
)
# The last convolution of every sub-discriminator, to one channel of scores.
POST_KERNEL = 3
# Between scales the audio is average-pooled (kernel 4, stride 2), halving its rate.
POOL_KERNEL = 4
POOL_STRIDE = 2

Features = list[torch.Tensor]


# --------------------------------------------------------------------------- discriminators


def _scores_and_features(
    x: torch.Tensor, convs: nn.ModuleList, conv_post: nn.Module
) -> tuple[torch.Tensor, Features]:
    """A sub-discriminator's layers: each conv then LeakyReLU, then the score conv; every
    layer's output is a feature map for feature matching, the last one the scores."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Audio (batch, samples) seen as (samples / period, period) -> (scores, feature maps).

    Reflect-padded to a multiple of ``period``; the 2-D convolutions run along the
    first axis only, so each of the ``period`` columns is judged on its own samples.
    Scores are (batch, rows * period); feature maps are the activations of every layer.
    """

    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        widths = [1] + [multiple * channels for multiple in PERIOD_WIDTHS]
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(
                    widths[i],
                    widths[i + 1],
                    (PERIOD_KERNEL, 1),
                    (PERIOD_STRIDE if i < PERIOD_STRIDED_LAYERS else 1, 1),
                    padding=(PERIOD_KERNEL // 2, 0),
                )
            )
            for i in range(len(PERIOD_WIDTHS))
        )
        self.conv_post = weight_norm(
            nn.Conv2d(widths[-1], 1, (POST_KERNEL, 1), padding=(POST_KERNEL // 2, 0))
        )

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, Features]:
        x = audio.unsqueeze(1)
        remainder = x.shape[-1] % self.period
        if remainder:
            x = F.pad(x, (0, self.period - remainder), mode="reflect")
        x = x.view(x.shape[0], 1, x.shape[-1] // self.period, self.period)
        return _scores_and_features(x, self.convs, self.conv_post)


class ScaleDiscriminator(nn.Module):
    """Audio (batch, samples) -> (scores (batch, positions), feature maps), by grouped 1-D convs.

    ``spectral``: spectral normalisation (Miyato et al. 2018) instead of weight
    normalisation, which HiFi-GAN uses on the raw-audio scale.
    """

    def __init__(self, channels: int, *, spectral: bool) -> None:
        super().__init__()
        normed = spectral_norm if spectral else weight_norm
        convs = []
        width = 1
        for multiple, kernel, stride, groups in SCALE_LAYERS:
            out_width = multiple * channels
            # Small test widths may not divide by the paper's groups; keep a valid grouping.
            valid_groups = math.gcd(groups, width, out_width)
            convs.append(
                normed(
                    nn.Conv1d(
                        width, out_width, kernel, stride, padding=kernel // 2, groups=valid_groups
                    )
                )
            )
            width = out_width
        self.convs = nn.ModuleList(convs)
        self.conv_post = normed(nn.Conv1d(width, 1, POST_KERNEL, padding=POST_KERNEL // 2))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, Features]:
        x = audio.unsqueeze(1)
        return _scores_and_features(x, self.convs, self.conv_post)


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period: audio -> (scores, feature maps), one each."""

    def __init__(self, periods: Sequence[int], channels: int) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(period, channels) for period in periods
        )

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[Features]]:
        outputs = [discriminator(audio) for discriminator in self.discriminators]
        return [scores for scores, _ in outputs], [features for _, features in outputs]


class MultiScaleDiscriminator(nn.Module):
    """``scales`` :class:`ScaleDiscriminator`: on the raw audio, then pooled by 2, by 4, ...

    Returns (scores, feature maps), one per scale.
    """

    def __init__(self, scales: int, channels: int) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, spectral=scale == 0) for scale in range(scales)
        )
        self.pool = nn.AvgPool1d(POOL_KERNEL, POOL_STRIDE, padding=POOL_KERNEL // 2)

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[Features]]:
        scores, features = [], []
        for scale, discriminator in enumerate(self.discriminators):
            if scale > 0:
                audio = self.pool(audio.unsqueeze(1)).squeeze(1)
            scale_scores, scale_features = discriminator(audio)
            scores.append(scale_scores)
            features.append(scale_features)
        return scores, features


# --------------------------------------------------------------------------- losses


def discriminator_adversarial_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Least-squares GAN loss of the discriminators (Mao et al. 2017; HiFi-GAN eq. 1).

    Sum over sub-discriminators of mean((1 - D(real))^2) + mean(D(fake)^2).
    """
    return torch.stack(
        [
            (1 - real).pow(2).mean() + fake.pow(2).mean()
            for real, fake in zip(real_scores, fake_scores, strict=True)
        ]
    ).sum()


def generator_adversarial_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the generator: sum of mean((1 - D(fake))^2) (HiFi-GAN eq. 2)."""
    return torch.stack([(1 - fake).pow(2).mean() for fake in fake_scores]).sum()


def feature_matching_loss(
    real_features: Sequence[Features], fake_features: Sequence[Features]
) -> torch.Tensor:
    """Sum over every feature map of every sub-discriminator of mean |real - fake| (eq. 4)."""
    return torch.stack(
        [
            (real - fake).abs().mean()
            for real_maps, fake_maps in zip(real_features, fake_features, strict=True)
            for real, fake in zip(real_maps, fake_maps, strict=True)
        ]
    ).sum()


def scores_halves(
    scores: list[torch.Tensor], size: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Scores on ``cat([a, b])`` (``a`` of ``size`` items) split into those on ``a`` and ``b``."""
    return [s[:size] for s in scores], [s[size:] for s in scores]


def _with_frozen_parameters(
    discriminator: nn.Module, audio: torch.Tensor
) -> tuple[list[torch.Tensor], list[Features]]:
    """``discriminator(audio)`` with its parameters detached: gradients reach ``audio`` only."""
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    return torch.func.functional_call(discriminator, frozen, (audio,))


# The state-dict prefixes of the discriminators (a model's ``mpd`` and ``msd``).
DISCRIMINATORS = ("mpd.", "msd.")


def without_discriminators(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's state without the discriminators: what inference loads."""
    return {k: v for k, v in state.items() if not k.startswith(DISCRIMINATORS)}


def discriminators_loss(
    discriminators: Sequence[nn.Module], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """The discriminators' least-squares loss on ``real`` audio and ``fake`` (detached
    here), summed over the discriminators, both halves scored in one pass."""
    both = torch.cat([real, fake.detach()])
    loss = torch.zeros((), device=real.device)
    for disc in discriminators:
        scores, _ = disc(both)
        real_scores, fake_scores = scores_halves(scores, real.shape[0])
        loss = loss + discriminator_adversarial_loss(real_scores, fake_scores)
    return loss


def generator_terms(
    discriminators: Sequence[nn.Module], real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's adversarial and feature-matching losses against the
    discriminators as they are now; their parameters get no gradient."""
    adversarial = torch.zeros((), device=real.device)
    matching = torch.zeros((), device=real.device)
    for disc in discriminators:
        with torch.no_grad():
            _, real_features = disc(real)
        scores, features = _with_frozen_parameters(disc, fake)
        adversarial = adversarial + generator_adversarial_loss(scores)
        matching = matching + feature_matching_loss(real_features, features)
    return adversarial, matching


# --------------------------------------------------------------------------- spec


class DiscriminatedSpec(VocoderSpec[ModelT]):
    """A family trained against the discriminators (``mpd``, ``msd``), whose model takes
    ``discriminators=False``: inference builds it without them and loads the rest."""

    def build_for_inference(self, saved: Mapping[str, Any]) -> ModelT:
        conditioning = ConditioningConfig.model_validate(saved["conditioning"])
        model_class = cast(Any, self.model_class)
        model: ModelT = model_class(
            self.section(saved), conditioning, int(saved["sample_rate"]), discriminators=False
        )
        return model

    def inference_state(self, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        return without_discriminators(state)
