"""The config of the GAN vocoder family (:mod:`wavegen_core.models.vocoders.gan.model`).

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from wavegen_core.models.vocoders.config import ConditioningConfig, VocoderSection
from wavegen_core.param_types import OddKernel, Probability, TrainLoopConfig


class GanConfig(VocoderSection):
    """A HiFi-GAN generator with multi-period and multi-scale discriminators (Kong et al. 2020).

    Defaults are the tiny profile. HiFi-GAN V1: initial width 512, upsampling
    [8, 8, 2, 2] with kernels [16, 16, 4, 4], residual kernels [3, 7, 11] with
    dilations [1, 3, 5] each, periods [2, 3, 5, 7, 11], 3 scales; losses weighted
    feature matching 2 and mel 45; an AdamW per network at 2e-4, betas (0.8, 0.99),
    learning rates decayed by 0.999 per epoch.
    The product of ``upsample_rates`` must equal ``conditioning.hop_length``.
    """

    family: ClassVar[str] = "gan"
    year: ClassVar[int] = 2020

    initial_channels: int = Field(64, gt=0, le=4096)
    upsample_rates: list[Annotated[int, Field(ge=1, le=64)]] = [8, 8, 4]
    upsample_kernel_sizes: list[Annotated[int, Field(ge=1, le=128)]] = [16, 16, 8]
    resblock_kernel_sizes: list[Annotated[OddKernel, Field(ge=1, le=63)]] = [3, 7, 11]
    resblock_dilations: list[list[Annotated[int, Field(ge=1, le=64)]]] = [[1, 3, 5]] * 3
    periods: list[Annotated[int, Field(ge=1, le=64)]] = [2, 3, 5, 7, 11]
    scales: int = Field(3, ge=1, le=8)
    # Width unit of both discriminators: 32 gives HiFi-GAN's (multi-period 32 to 1,024,
    # multi-scale 128 to 1,024 channels). The discriminators dominate a training step's
    # cost: at 4, a step of the tiny profile takes about 1 s on 2 CPU cores, at 16 about 10 s.
    discriminator_channels: int = Field(4, gt=0, le=1024)
    feature_matching_weight: float = Field(2.0, ge=0.0)
    mel_weight: float = Field(45.0, ge=0.0)
    # The mel-spectrogram of the mel loss (HiFi-GAN: 1,024-point FFT, hop 256, 80 bands).
    mel_n_fft: int = Field(1024, ge=16, le=16384)
    mel_hop_length: int = Field(256, gt=0, le=16384)
    mel_bins: int = Field(80, ge=4, le=512)
    adam_betas: tuple[Probability, Probability] = (0.8, 0.99)
    # Each network's learning rate is multiplied by lr_decay every lr_decay_every steps
    # (HiFi-GAN: 0.999 per epoch, about 800 steps of LJSpeech at batch 16).
    lr_decay: float = Field(0.999, gt=0.0, le=1.0)
    lr_decay_every: int = Field(1000, ge=1)
    segment_frames: int = Field(16, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=2e-4, checkpoint_every=100, eval_every=100
    )

    @model_validator(mode="after")
    def _lists_match(self) -> GanConfig:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates has {len(self.upsample_rates)} entries and "
                f"upsample_kernel_sizes {len(self.upsample_kernel_sizes)}; one kernel per rate"
            )
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if kernel < rate or (kernel - rate) % 2:
                raise ValueError(
                    f"upsample kernel {kernel} for rate {rate}: the kernel must be at least "
                    "the rate and differ from it by an even number, so that the output is "
                    "exactly rate times longer"
                )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilations):
            raise ValueError("resblock_dilations needs one list of dilations per resblock kernel")
        if self.initial_channels % 2 ** len(self.upsample_rates):
            raise ValueError(
                f"initial_channels={self.initial_channels} halves at each of the "
                f"{len(self.upsample_rates)} upsamplings; make it a multiple of "
                f"{2 ** len(self.upsample_rates)}"
            )
        return self

    def check_conditioning(self, conditioning: ConditioningConfig) -> None:
        total = math.prod(self.upsample_rates)
        if total != conditioning.hop_length:
            raise ValueError(
                f"vocoder.gan.upsample_rates = {self.upsample_rates} multiply to {total}, but "
                f"vocoder.conditioning.hop_length is {conditioning.hop_length}; they must be "
                "equal"
            )
