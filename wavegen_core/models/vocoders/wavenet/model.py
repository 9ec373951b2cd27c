"""A MIDI-conditioned WaveNet vocoder (van den Oord et al. 2016; Hawthorne et al. 2019).

The model predicts each audio sample from the samples before it and the piano roll:
the previous sample goes through a causal input convolution to the residual channels,
then through a stack of gated residual layers with dilated causal convolutions
(:class:`~wavegen_core.models.blocks.GatedResidualStack`, dilation
``2 ** (i % dilation_cycle)``), with the roll's features, upsampled to the sample rate
by :class:`~wavegen_core.models.vocoders.conditioning.ConditioningNetwork`, added in every
layer (local conditioning, section 2.5). The sum of the skip outputs goes through
ReLU, 1x1, ReLU, 1x1 to the output distribution (section 2.4), one of:

* ``mu_law``: 8-bit mu-law companding and a softmax over its classes (section 2.2);
* ``logistic_mixture``: a discretised mixture of logistics over 16-bit bins of
  [-1, 1] (Salimans et al. 2017, PixelCNN++; van den Oord et al. 2018, Parallel
  WaveNet), as in the Tacotron 2 vocoder (Shen et al. 2018).

Training is teacher-forced (:meth:`WaveNetVocoder.loss`). Generation is sequential;
its fast engines (a queue of past inputs per causal convolution, the "fast WaveNet"
of Paine et al. 2016, run eagerly, fused or compiled by numba) live beside this file
in :mod:`.generation`, as the mixin :class:`WaveNetGeneration` this model inherits.
:meth:`WaveNetVocoder.generate_naive`, which recomputes the whole receptive field for
every sample, is the reference they are tested against.

Receptive field. The prediction of sample ``t`` depends on samples
``t - receptive_field`` to ``t - 1``: the input convolution (kernel 2) sees two
inputs, each gated layer ``(kernel_size - 1) * dilation`` more, and input ``t`` is
sample ``t - 1`` (the first input is silence).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.blocks import DilatedConv1d, GatedResidualLayer, GatedResidualStack
from wavegen_core.models.spec import VocoderSpec
from wavegen_core.models.vocoders.conditioning import ConditioningNetwork, split_history
from wavegen_core.models.vocoders.config import ConditioningConfig, MelFramesConfig
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig
from wavegen_core.models.vocoders.wavenet.generation import (
    CONDITIONING_BLOCK_FRAMES,
    UniformStream,
    WaveNetGeneration,
)
from wavegen_core.progress import progress_bar

# The input convolution sees the previous sample and the one before it (the original
# WaveNet's causal convolution of width 2, figure 2).
INPUT_KERNEL = 2
# The logistic mixture models 16-bit audio: 2 ** 16 bins over [-1, 1] (Parallel WaveNet).
LOGISTIC_BINS = 2**16
# Lower bound of a logistic's log scale, as in PixelCNN++'s reference code.
LOG_SCALE_MIN = -7.0


# --------------------------------------------------------------------------- mu-law


def mu_law_encode(audio: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] to mu-law classes ``0 .. channels - 1`` (int64), mu = channels - 1.

    ``f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` (van den Oord et al. 2016, eq. 2),
    then rounded to the nearest of ``channels`` evenly spaced levels of [-1, 1].
    """
    mu = channels - 1
    audio = audio.clamp(-1.0, 1.0)
    companded = torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)
    return torch.round((companded + 1) / 2 * mu).long()


def mu_law_decode(classes: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Mu-law classes to audio in [-1, 1] (the inverse of :func:`mu_law_encode`)."""
    mu = channels - 1
    companded = classes.float() / mu * 2 - 1
    return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(mu)) / mu


# --------------------------------------------------------------------------- logistic mixture


def split_mixture(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(..., 3 K, time)`` network output -> mixture logits, means, log scales (K each).

    Log scales are bounded below by ``LOG_SCALE_MIN``.
    """
    logits, means, log_scales = params.chunk(3, dim=-2)
    return logits, means, log_scales.clamp(min=LOG_SCALE_MIN)


def logistic_mixture_log_prob(params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Log-probability (nats) of each sample of ``audio`` (batch, time) in [-1, 1] under
    the discretised logistic mixture ``params`` (batch, 3 K, time).

    Each sample stands for its 16-bit bin of width ``2 / (LOGISTIC_BINS - 1)``; its
    probability is the mixture's mass on that bin, the edge bins taking the tails
    (PixelCNN++, Salimans et al. 2017, section 2.1). Where a bin's mass underflows
    the density at the bin's centre times its width replaces it.
    """
    logits, means, log_scales = split_mixture(params)
    half_bin = 1.0 / (LOGISTIC_BINS - 1)
    centred = audio.unsqueeze(1) - means
    inverse_scale = torch.exp(-log_scales)
    upper = inverse_scale * (centred + half_bin)
    lower = inverse_scale * (centred - half_bin)
    log_cdf_upper = F.logsigmoid(upper)  # log P(X <= upper edge), for the lowest bin
    log_survival_lower = -F.softplus(lower)  # log P(X > lower edge), for the highest bin
    mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    middle = inverse_scale * centred
    log_density_at_centre = middle - log_scales - 2 * F.softplus(middle)
    log_mass = torch.where(
        mass > 1e-5,
        torch.log(mass.clamp(min=1e-12)),
        log_density_at_centre + math.log(2 * half_bin),
    )
    edge = 1.0 - half_bin
    audio_k = audio.unsqueeze(1).expand_as(centred)
    log_bin = torch.where(
        audio_k < -edge,
        log_cdf_upper,
        torch.where(audio_k > edge, log_survival_lower, log_mass),
    )
    return torch.logsumexp(log_bin + F.log_softmax(logits, dim=1), dim=1)


# --------------------------------------------------------------------------- sampling


def draws_per_sample(config: WaveNetConfig) -> int:
    """Uniforms one sample needs: the class (mu-law), or the component and the value."""
    return 1 if config.output == "mu_law" else 2


def sample_mu_law(logits: torch.Tensor, uniform: torch.Tensor, temperature: float) -> torch.Tensor:
    """Classes (batch,) drawn from ``softmax(logits / temperature)`` (batch, Q) by
    inverse CDF with one uniform (batch,) per stream."""
    cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
    drawn = torch.searchsorted(cdf, uniform.to(cdf.dtype).unsqueeze(-1), right=True)
    return drawn.squeeze(-1).clamp(max=logits.shape[-1] - 1)


def sample_logistic_mixture(
    params: torch.Tensor, uniforms: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Values (batch,) in [-1, 1] from the mixture ``params`` (batch, 3 K), with two
    uniforms (batch, 2) per stream: the first picks a component by inverse CDF of the
    weights ``softmax(logits / temperature)``, the second draws from that logistic,
    whose scale is multiplied by ``temperature``, by its inverse CDF."""
    logits, means, log_scales = split_mixture(params.unsqueeze(-1))
    logits, means, log_scales = logits[..., 0], means[..., 0], log_scales[..., 0]
    cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
    component = torch.searchsorted(cdf, uniforms[:, :1].to(cdf.dtype), right=True)
    component = component.clamp(max=logits.shape[-1] - 1)
    mean = means.gather(-1, component).squeeze(-1)
    scale = torch.exp(log_scales.gather(-1, component).squeeze(-1)) * temperature
    # Away from 0 and 1, so that the logistic's inverse CDF stays finite (PixelCNN++).
    uniform = uniforms[:, 1].to(mean.dtype).clamp(1e-5, 1.0 - 1e-5)
    value = mean + scale * (torch.log(uniform) - torch.log1p(-uniform))
    return value.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------- the model


class WaveNetVocoder(WaveNetGeneration, nn.Module):
    """Audio (batch, time) given a piano roll (batch, ROLL_CHANNELS, frames).

    ``time == frames * hop_length``; see the module docstring for the architecture.
    """

    def __init__(
        self,
        config: WaveNetConfig,
        conditioning: ConditioningConfig,
        sample_rate: int,
        cond_in_channels: int = ROLL_CHANNELS,
        mel: MelFramesConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate
        self.conditioning = ConditioningNetwork(
            conditioning, cond_in_channels, sample_rate, mel=mel
        )
        self.hop_length = conditioning.hop_length
        self.mu_law = config.output == "mu_law"
        input_channels = config.quantization_channels if self.mu_law else 1
        self.input_conv = DilatedConv1d(
            input_channels, config.residual_channels, INPUT_KERNEL, causal=True
        )
        self.stack = GatedResidualStack(
            layers=config.layers,
            dilation_cycle=config.dilation_cycle,
            kernel_size=config.kernel_size,
            residual_channels=config.residual_channels,
            gate_channels=config.gate_channels,
            skip_channels=config.skip_channels,
            cond_channels=conditioning.channels,
            causal=True,
        )
        output_channels = config.quantization_channels if self.mu_law else 3 * config.mixtures
        # Skip sum -> ReLU -> 1x1 -> ReLU -> 1x1 (figure 4).
        self.output_hidden = nn.Conv1d(config.skip_channels, config.skip_channels, 1)
        self.output_projection = nn.Conv1d(config.skip_channels, output_channels, 1)

    # The logistic mixture's floor on log scales, read by the generation engines.
    log_scale_min = LOG_SCALE_MIN

    @property
    def receptive_field(self) -> int:
        """Past samples one prediction depends on: sample ``t`` is predicted from
        samples ``t - receptive_field`` to ``t - 1``."""
        return self.input_conv.reach + self.stack.receptive_field

    @property
    def history_frames(self) -> int:
        """Frames of the roll before the audio that the conditioning reads."""
        return self.conditioning.history_frames

    @property
    def draws(self) -> int:
        """Uniforms one sample needs (see :func:`draws_per_sample`)."""
        return draws_per_sample(self.config)

    # ------------------------------------------------------------------ inputs

    @property
    def silence(self) -> float:
        """The input before the first sample: 0.0, or mu-law's class of 0.0."""
        return float(mu_law_encode(torch.zeros(()), self.config.quantization_channels))

    def input_features(self, previous: torch.Tensor) -> torch.Tensor:
        """Previous samples (batch, time), as classes (mu-law, int64) or values (float),
        -> input features (batch, channels, time): one-hot classes or the value."""
        if self.mu_law:
            one_hot = F.one_hot(previous.long(), self.config.quantization_channels)
            return one_hot.transpose(1, 2).to(self.input_conv.weight.dtype)
        return previous.unsqueeze(1).to(self.input_conv.weight.dtype)

    def network(self, features: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Input features (batch, C_in, time) and conditioning at the sample rate
        (batch, cond_channels, time) -> output distribution (batch, out, time)."""
        return self.head(self.stack(self.input_conv(features), cond))

    def head(self, skips: torch.Tensor) -> torch.Tensor:
        """The sum of the skip outputs (batch, skip, time) -> output (batch, out, time)."""
        hidden = self.output_hidden(F.relu(skips))
        output: torch.Tensor = self.output_projection(F.relu(hidden))
        return output

    @property
    def layers(self) -> list[GatedResidualLayer]:
        """The stack's gated layers, typed (a ModuleList yields plain modules)."""
        return [layer for layer in self.stack.layers if isinstance(layer, GatedResidualLayer)]

    def forward(self, audio: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
        """Teacher-forced output (batch, out, time): position ``t`` predicts ``audio[t]``
        from ``audio[:t]`` (the first input is silence) and the roll, which ends with
        the audio and may begin earlier (see :func:`split_history`)."""
        history = split_history(audio, roll, self.hop_length)
        targets = self.targets(audio)
        silence = torch.full_like(targets[:, :1], self.silence)
        previous = torch.cat([silence, targets[:, :-1]], dim=1)
        return self.network(self.input_features(previous), self.conditioning(roll, history))

    def targets(self, audio: torch.Tensor) -> torch.Tensor:
        """What the model predicts: mu-law classes (int64) or the audio itself."""
        if self.mu_law:
            return mu_law_encode(audio, self.config.quantization_channels)
        return audio

    def loss(
        self, audio: torch.Tensor, roll: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean negative log-likelihood per sample (nats) of ``audio`` (batch, time) given
        ``roll`` (batch, ROLL_CHANNELS, frames), and ``{"nll": ...}`` for logging."""
        output = self(audio, roll)
        if self.mu_law:
            nll = F.cross_entropy(output, self.targets(audio))
        else:
            nll = -logistic_mixture_log_prob(output, audio).mean()
        return nll, {"nll": nll.detach()}

    def decode(self, drawn: torch.Tensor) -> torch.Tensor:
        """Drawn classes (mu-law) or values -> audio in [-1, 1]."""
        if self.mu_law:
            return mu_law_decode(drawn, self.config.quantization_channels)
        return drawn.float()

    def draw(
        self, output: torch.Tensor, uniforms: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """One sample per stream from the output distribution (batch, out)."""
        if self.mu_law:
            return sample_mu_law(output, uniforms[:, 0], temperature)
        return sample_logistic_mixture(output, uniforms, temperature)

    # ------------------------------------------------------------------ generation

    def conditioning_blocks(
        self,
        roll: torch.Tensor,
        block_frames: int = CONDITIONING_BLOCK_FRAMES,
        history: int = 0,
        first_frame: int = 0,
    ) -> Iterator[torch.Tensor]:
        """The upsampled conditioning (batch, channels, block_frames * hop) of frames
        ``history ..``, block by block, equal to the same samples of
        ``self.conditioning(roll, history, first_frame)`` with memory bounded for any
        length (see :meth:`ConditioningNetwork.blocks`)."""
        return self.conditioning.blocks(roll, block_frames, history, first_frame)

    def check_roll(self, roll: torch.Tensor) -> None:
        channels = self.conditioning.in_channels
        if roll.dim() != 3 or roll.shape[1] != channels:
            raise ValueError(f"roll must be (batch, {channels}, frames), got {tuple(roll.shape)}")

    @torch.no_grad()
    def generate_naive(
        self,
        roll: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """As :meth:`generate`, recomputing the whole receptive field for every sample.

        The reference for tests and benchmarks: same random numbers, same samples.
        """
        self.check_roll(roll)
        temperature = WaveNetConfig.default_temperature() if temperature is None else temperature
        batch, samples = roll.shape[0], roll.shape[-1] * self.hop_length
        cond = self.conditioning(roll)
        uniforms = UniformStream(batch, self.draws, generator, roll.device)
        # previous[:, t] is the input at position t: silence, then the drawn samples.
        dtype = torch.long if self.mu_law else torch.float32
        previous = torch.full((batch, samples + 1), self.silence, dtype=dtype, device=roll.device)
        window = self.receptive_field
        bar = (
            progress_bar(total=samples, desc="wavenet (naive)", unit="sample") if progress else None
        )
        for t in range(samples):
            start = max(t + 1 - window, 0)
            features = self.input_features(previous[:, start : t + 1])
            output = self.network(features, cond[..., start : t + 1])[..., -1]
            previous[:, t + 1] = self.draw(output, uniforms.take(1)[0], temperature)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return self.decode(previous[:, 1:])


# --------------------------------------------------------------------------- spec

SPEC: VocoderSpec[WaveNetVocoder] = VocoderSpec(WaveNetConfig, WaveNetVocoder)
