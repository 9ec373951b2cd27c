"""The configs of the WaveNet (:mod:`.model`): its dilated stack, shared with the tiers'
decoders, and the MIDI-conditioned vocoder family.

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from wavegen_core.models.vocoders.config import VocoderSection
from wavegen_core.param_types import Strict, TrainLoopConfig


class WaveNetStackConfig(Strict):
    """The dilated stack of a WaveNet, shared by the vocoder and the tiers' decoders:
    layer ``i`` has dilation ``2 ** (i % dilation_cycle)``."""

    layers: int = Field(10, ge=1, le=128)
    dilation_cycle: int = Field(10, ge=1, le=24)
    kernel_size: int = Field(2, ge=2, le=8)
    residual_channels: int = Field(32, gt=0, le=2048)
    gate_channels: int = Field(64, gt=0, le=4096)
    skip_channels: int = Field(64, gt=0, le=4096)


class WaveNetConfig(WaveNetStackConfig, VocoderSection):
    """A MIDI-conditioned WaveNet (van den Oord et al. 2016; Hawthorne et al. 2019).

    Defaults are the tiny profile. The full profile is 30 layers in 3 cycles of 10,
    as the WaveNet vocoder of Tacotron 2 (Shen et al. 2018), whose output is a
    mixture of 10 logistics.
    """

    family: ClassVar[str] = "wavenet"
    year: ClassVar[int] = 2016
    autoregressive: ClassVar[bool] = True
    whole_pieces: ClassVar[bool] = True
    takes_mel: ClassVar[bool] = True
    # 1.0 samples the WaveNet's predicted distribution as it is.
    sampling_temperature: ClassVar[Any] = Field(1.0, gt=0.0, le=10.0)

    # mu_law: 8-bit mu-law classes with a softmax (the original WaveNet);
    # logistic_mixture: a discretised mixture of logistics (PixelCNN++, Parallel WaveNet).
    output: Literal["mu_law", "logistic_mixture"] = "mu_law"
    quantization_channels: int = Field(256, ge=2, le=65536)
    mixtures: int = Field(10, ge=1, le=64)
    # Training excerpts, in conditioning frames (frames x hop_length samples).
    segment_frames: int = Field(8, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=1e-3, checkpoint_every=100, eval_every=100
    )
