"""A WaveGlow-style normalising flow vocoder (Prenger et al. 2019), conditioned on MIDI.

The flow maps audio to Gaussian noise through a chain of invertible steps whose
Jacobian log-determinants are cheap, so it trains by exact maximum likelihood and
samples in parallel: draw ``z`` and run the chain backwards (Prenger et al. 2019,
section 2; the Glow steps of Kingma & Dhariwal 2018).

Read top to bottom: squeezing audio into groups of samples, the two kinds of step (an
invertible 1x1 convolution that mixes the channels, an affine coupling layer whose
coupling network is the non-causal gated stack of :mod:`wavegen_core.models.blocks`),
the model with its likelihood, and sampling.

Layout. ``groups`` consecutive samples become the channels of one time step:
audio ``(B, T)`` -> ``(B, groups, T / groups)`` with ``x[b, g, j] = audio[b, j * groups + g]``;
the conditioning at the sample rate ``(B, C, T)`` is squeezed the same way to
``(B, C * groups, T / groups)``, so each step sees the features of all its samples.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.models.blocks import GatedResidualStack
from wavegen_core.models.spec import VocoderSpec
from wavegen_core.models.vocoders.conditioning import ConditioningNetwork, split_history
from wavegen_core.models.vocoders.config import ConditioningConfig, MelFramesConfig
from wavegen_core.models.vocoders.flow.config import FlowConfig
from wavegen_core.progress import progress_bar

# --------------------------------------------------------------------------- building blocks


def squeeze(signal: torch.Tensor, groups: int) -> torch.Tensor:
    """``(B, C, T)`` -> ``(B, C * groups, T / groups)``; channel ``c * groups + g`` at step
    ``j`` holds ``signal[:, c, j * groups + g]``. ``T`` must be a multiple of ``groups``."""
    batch, channels, samples = signal.shape
    if samples % groups:
        raise ValueError(f"{samples} samples are not a multiple of groups={groups}")
    steps = samples // groups
    grouped = signal.reshape(batch, channels, steps, groups).permute(0, 1, 3, 2)
    return grouped.reshape(batch, channels * groups, steps)


def unsqueeze(grouped: torch.Tensor) -> torch.Tensor:
    """Grouped audio ``(B, groups, T / groups)`` -> ``(B, T)``; the inverse of :func:`squeeze`
    for one channel."""
    batch, groups, steps = grouped.shape
    return grouped.permute(0, 2, 1).reshape(batch, steps * groups)


class Invertible1x1Conv(nn.Module):
    """``x -> W x`` at every time step: a learnt permutation of the channels (Glow, 3.2).

    ``W`` starts as a random orthogonal matrix with determinant +1 (a rotation): its
    log-determinant starts at 0, and since ``det W`` cannot cross 0 without the loss
    going to infinity it keeps its sign. The log-determinant of the whole step is
    ``steps * log|det W|``. ``W`` is at most ``groups x groups`` (64), so plain
    ``slogdet`` and ``inv`` are cheap; the LU parametrisation of Glow pays off only for
    wide channel counts.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        # QR in float64, so that the float32 weights are orthogonal to rounding.
        gaussian = torch.randn(channels, channels, generator=generator, dtype=torch.float64)
        weight, _ = torch.linalg.qr(gaussian)
        if torch.det(weight) < 0:
            weight[:, 0] = -weight[:, 0]
        self.weight = nn.Parameter(weight.float())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, channels, steps)`` -> the mixed channels and the log-determinant ``(B,)``."""
        log_det = x.shape[-1] * torch.linalg.slogdet(self.weight).logabsdet
        return F.conv1d(x, self.weight.unsqueeze(-1)), log_det.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv1d(y, torch.linalg.inv(self.weight).unsqueeze(-1))


class AffineCoupling(nn.Module):
    """``x_a`` passes through; ``x_b' = exp(log_s) * x_b + t`` with ``log_s, t = net(x_a, cond)``.

    ``x_a`` is the first ``channels // 2`` channels, ``x_b`` the rest (an odd count gives
    ``x_b`` the extra one). The coupling network is WaveGlow's ``WN``: a 1x1 start
    convolution, the centred gated residual stack with the squeezed conditioning added
    in every layer (dilations ``1, 2, 4, ...``, one cycle) and a 1x1 end convolution
    initialised to zero, so that every coupling starts as the identity (Prenger et
    al. 2019, section 2.2). The log-determinant is the sum of ``log_s``.
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        *,
        layers: int,
        hidden_channels: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.pass_channels = channels // 2
        self.coupled_channels = channels - self.pass_channels
        self.start = nn.Conv1d(self.pass_channels, hidden_channels, 1)
        self.stack = GatedResidualStack(
            layers=layers,
            dilation_cycle=layers,
            kernel_size=kernel_size,
            residual_channels=hidden_channels,
            gate_channels=2 * hidden_channels,
            skip_channels=hidden_channels,
            cond_channels=cond_channels,
            causal=False,
        )
        self.end = nn.Conv1d(hidden_channels, 2 * self.coupled_channels, 1)
        nn.init.zeros_(self.end.weight)
        assert self.end.bias is not None
        nn.init.zeros_(self.end.bias)

    def scale_and_shift(
        self, passed: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_s`` and ``t``, each ``(B, coupled_channels, steps)``."""
        log_scale, shift = self.end(self.stack(self.start(passed), cond)).chunk(2, dim=1)
        return log_scale, shift

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        passed, coupled = x.split([self.pass_channels, self.coupled_channels], dim=1)
        log_scale, shift = self.scale_and_shift(passed, cond)
        coupled = torch.exp(log_scale) * coupled + shift
        return torch.cat([passed, coupled], dim=1), log_scale.sum(dim=(1, 2))

    def inverse(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        passed, coupled = y.split([self.pass_channels, self.coupled_channels], dim=1)
        log_scale, shift = self.scale_and_shift(passed, cond)
        return torch.cat([passed, (coupled - shift) * torch.exp(-log_scale)], dim=1)


# --------------------------------------------------------------------------- the model


class FlowVocoder(nn.Module):
    """Audio ``(B, T)`` <-> noise, conditioned on a piano roll ``(B, ROLL_CHANNELS, F)``.

    ``T = F * hop_length``. ``flows`` steps of (1x1 convolution, affine coupling) act on
    the grouped audio; before every ``early_every``-th step (not the first),
    ``early_channels`` channels leave for ``z`` unchanged, so later steps are narrower
    (WaveGlow's early outputs, section 2.3: ``n_early_every=4, n_early_size=2``).

    ``z`` is ``(B, groups, T / groups)``: the early outputs in the order they left, then
    the channels of the last step. Its density is ``N(0, sigma^2)`` per element.
    """

    def __init__(
        self,
        config: FlowConfig,
        conditioning: ConditioningConfig,
        sample_rate: int,
        mel: MelFramesConfig | None = None,
    ):
        super().__init__()
        config.check_conditioning(conditioning)
        self.config = config
        self.sample_rate = sample_rate
        self.groups = config.groups
        self.conditioning = ConditioningNetwork(conditioning, sample_rate=sample_rate, mel=mel)
        self.hop_length = conditioning.hop_length
        cond_channels = conditioning.channels * config.groups
        self.convs = nn.ModuleList()
        self.couplings = nn.ModuleList()
        for k in range(config.flows):
            channels = self.flow_channels(k)
            if channels < 2:
                raise ValueError(
                    f"flow {k} would couple {channels} channel(s); lower flow.early_channels "
                    f"or flow.flows, or raise flow.groups"
                )
            self.convs.append(Invertible1x1Conv(channels))
            self.couplings.append(
                AffineCoupling(
                    channels,
                    cond_channels,
                    layers=config.coupling_layers,
                    hidden_channels=config.coupling_channels,
                    kernel_size=config.kernel_size,
                )
            )

    @property
    def history_frames(self) -> int:
        """Frames of the roll before the audio that the conditioning reads."""
        return self.conditioning.history_frames

    def emits_early(self, k: int) -> bool:
        """Whether ``early_channels`` leave for ``z`` before flow ``k``."""
        return k > 0 and k % self.config.early_every == 0 and self.config.early_channels > 0

    def flow_channels(self, k: int) -> int:
        """Channels that flow ``k`` acts on, after the early outputs before it."""
        early = k // self.config.early_every if self.config.early_channels else 0
        return self.groups - early * self.config.early_channels

    def flow_step(self, k: int) -> tuple[Invertible1x1Conv, AffineCoupling]:
        """The 1x1 convolution and the coupling layer of flow ``k``."""
        return cast(Invertible1x1Conv, self.convs[k]), cast(AffineCoupling, self.couplings[k])

    def grouped_conditioning(
        self, roll: torch.Tensor, history: int = 0, first_frame: int = 0
    ) -> torch.Tensor:
        """Roll ``(B, ROLL_CHANNELS, F)`` -> ``(B, channels * groups, (F - history) * hop /
        groups)``: the conditioning of the frames after ``history``."""
        return squeeze(self.conditioning(roll, history, first_frame), self.groups)

    def forward(self, audio: torch.Tensor, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio ``(B, T)`` -> ``z`` ``(B, groups, T / groups)`` and ``log|det dz/dx|`` ``(B,)``.
        The roll ends with the audio and may begin earlier (see :func:`split_history`)."""
        cond = self.grouped_conditioning(roll, split_history(audio, roll, self.hop_length))
        x = squeeze(audio.unsqueeze(1), self.groups)
        outputs: list[torch.Tensor] = []
        log_det = audio.new_zeros(audio.shape[0])
        for k in range(self.config.flows):
            conv, coupling = self.flow_step(k)
            if self.emits_early(k):
                outputs.append(x[:, : self.config.early_channels])
                x = x[:, self.config.early_channels :]
            x, conv_log_det = conv(x)
            x, coupling_log_det = coupling(x, cond)
            log_det = log_det + conv_log_det + coupling_log_det
        outputs.append(x)
        return torch.cat(outputs, dim=1), log_det

    def inverse(
        self,
        z: torch.Tensor,
        roll: torch.Tensor,
        *,
        history: int = 0,
        first_frame: int = 0,
        progress: bool = False,
    ) -> torch.Tensor:
        """``z`` ``(B, groups, T / groups)`` (the layout of :meth:`forward`) -> audio ``(B, T)``
        for the frames of ``roll`` after ``history``."""
        cond = self.grouped_conditioning(roll, history, first_frame)
        if cond.shape[-1] != z.shape[-1] or z.shape[1] != self.groups:
            raise ValueError(
                f"z of shape {tuple(z.shape)} does not fit {roll.shape[-1] - history} frames: "
                "expected "
                f"({z.shape[0]}, {self.groups}, {cond.shape[-1]})"
            )
        early_used = self.groups - self.flow_channels(self.config.flows - 1)
        x = z[:, early_used:]
        bar = progress_bar(total=self.config.flows, desc="flow", unit="step") if progress else None
        for k in reversed(range(self.config.flows)):
            conv, coupling = self.flow_step(k)
            x = conv.inverse(coupling.inverse(x, cond))
            if self.emits_early(k):
                early_used -= self.config.early_channels
                x = torch.cat([z[:, early_used : early_used + self.config.early_channels], x], 1)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return unsqueeze(x)

    def loss(
        self, audio: torch.Tensor, roll: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Negative log-likelihood of ``audio`` in nats per sample, averaged over the batch.

        ``-log p(x) = -log N(z; 0, sigma^2) - log|det dz/dx|`` with the Gaussian's
        normaliser ``log sigma + log(2 pi) / 2`` per sample included, so it is the true
        NLL of a continuous density (it can be negative). WaveGlow's loss leaves the
        constants out; they do not change the gradients. Extras, also per sample:
        ``prior`` (the Gaussian term) and ``log_det``.
        """
        z, log_det = self(audio, roll)
        sigma = self.config.sigma
        samples = audio.shape[-1]
        prior = (
            z.pow(2).sum(dim=(1, 2)) / (2 * sigma**2)
            + samples * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
        ) / samples
        log_det_per_sample = log_det / samples
        nll = (prior - log_det_per_sample).mean()
        extras = {
            "nll": nll.detach(),
            "prior": prior.mean().detach(),
            "log_det": log_det_per_sample.mean().detach(),
        }
        return nll, extras

    # ----------------------------------------------------------------------- sampling

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
        """Audio ``(B, (F - history) * hop_length)`` for a roll ``(B, ROLL_CHANNELS, F)``, in
        parallel; the first ``history`` frames are read by the conditioning only, and the
        roll's first frame is frame ``first_frame`` of its piece.

        ``z ~ N(0, (sigma * temperature)^2)``, drawn with ``generator``; WaveGlow samples
        below the training sigma (None: 0.6, the default of
        ``vocoder.synthesize.temperature.flow``) for cleaner audio, and temperature 0
        gives the deterministic path ``inverse(0)``. The result is clamped to [-1, 1].
        """
        temperature = FlowConfig.default_temperature() if temperature is None else temperature
        weight = self.flow_step(0)[0].weight
        steps = (roll.shape[-1] - history) * self.hop_length // self.groups
        # Drawn where the generator lives, so a seeded CPU generator drives a GPU model too.
        z = torch.randn(
            roll.shape[0],
            self.groups,
            steps,
            generator=generator,
            device=generator.device if generator is not None else weight.device,
            dtype=weight.dtype,
        )
        z = z.to(weight.device) * (self.config.sigma * temperature)
        audio = self.inverse(
            z, roll.to(weight.dtype), history=history, first_frame=first_frame, progress=progress
        )
        return audio.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------- spec

SPEC: VocoderSpec[FlowVocoder] = VocoderSpec(FlowConfig, FlowVocoder)
