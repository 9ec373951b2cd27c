"""The config of the flow vocoder family (:mod:`wavegen_core.models.vocoders.flow.model`).

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from wavegen_core.models.vocoders.config import ConditioningConfig, VocoderSection
from wavegen_core.param_types import OddKernel, TrainLoopConfig


class FlowConfig(VocoderSection):
    """A WaveGlow-style normalising flow (Prenger et al. 2019).

    Defaults are the tiny profile. WaveGlow: 12 flows over groups of 8 samples, 2
    channels output early after every 4 flows, coupling networks of 8 layers with 512
    residual channels, training sigma 1.0 (sampling at 0.6 of it:
    ``vocoder.synthesize.temperature.flow``).
    ``conditioning.hop_length`` must be a multiple of ``groups`` (a frame holds whole
    groups of samples); the model checks it when it is built.
    """

    family: ClassVar[str] = "flow"
    year: ClassVar[int] = 2019
    takes_mel: ClassVar[bool] = True
    # WaveGlow samples its prior at 0.6 of the training sigma (Prenger et al. 2019).
    sampling_temperature: ClassVar[Any] = Field(0.6, ge=0.0, le=10.0)

    groups: int = Field(8, ge=2, le=64)
    flows: int = Field(4, ge=1, le=64)
    early_every: int = Field(2, ge=1, le=64)
    early_channels: int = Field(2, ge=0, le=64)
    coupling_layers: int = Field(4, ge=1, le=64)
    coupling_channels: int = Field(32, gt=0, le=2048)
    kernel_size: OddKernel = Field(3, ge=1, le=31)
    # Standard deviation of the Gaussian prior in training.
    sigma: float = Field(1.0, gt=0.0, le=10.0)
    segment_frames: int = Field(32, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=1e-3, checkpoint_every=100, eval_every=100
    )

    @model_validator(mode="after")
    def _early_outputs_fit(self) -> FlowConfig:
        early = (self.flows - 1) // self.early_every * self.early_channels
        if self.early_channels and early >= self.groups:
            raise ValueError(
                f"{(self.flows - 1) // self.early_every} early outputs of "
                f"{self.early_channels} channels leave nothing of groups={self.groups}"
            )
        if self.groups - early < 2:
            raise ValueError("the last flow needs at least 2 channels to couple")
        return self

    def check_conditioning(self, conditioning: ConditioningConfig) -> None:
        if conditioning.hop_length % self.groups:
            raise ValueError(
                f"vocoder.flow.groups = {self.groups} does not divide "
                f"vocoder.conditioning.hop_length = {conditioning.hop_length}: a frame must "
                "hold whole groups of samples"
            )
