"""The configs of a VQ-VAE tier (:mod:`wavegen_core.models.hierarchy.vqvae`) and its quantiser
(:mod:`wavegen_core.models.hierarchy.quantiser`).

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from wavegen_core.models.vocoders.wavenet.config import WaveNetStackConfig
from wavegen_core.param_types import Strict, TrainLoopConfig


def _power_of_two(value: int) -> int:
    if value < 2 or value & (value - 1):
        raise ValueError("must be a power of two (2, 4, 8, ...): each halving is one strided layer")
    return value


class QuantiserConfig(Strict):
    """The vector quantiser every tier uses (one module, :mod:`.quantiser`).

    The codebook follows exponential moving averages of the encoder outputs assigned to
    each code (van den Oord et al. 2017, appendix A.1); codes whose average count per
    batch falls below ``restart_threshold`` are moved to a random encoder output of the
    batch (Jukebox, Dhariwal et al. 2020); ``kmeans_init`` starts the codebook from
    k-means on the first training batch.
    """

    commitment: float = Field(0.02, ge=0.0, le=10.0)  # beta; Jukebox: 0.02
    decay: float = Field(0.99, gt=0.0, lt=1.0)
    restart_threshold: float = Field(1.0, ge=0.0)
    kmeans_init: bool = True
    kmeans_iterations: int = Field(10, ge=1, le=1000)


class TierWaveNetConfig(WaveNetStackConfig):
    """The autoregressive decoder of a tier (``decoder: wavenet``): a WaveNet over the
    level below (mu-law audio for tier 1, the codes of tier k - 1 above it), conditioned
    on this tier's code vectors upsampled by ``hop``."""

    # The code vectors' encoder before upsampling (centred convolutions over code steps).
    cond_channels: int = Field(32, gt=0, le=1024)
    cond_layers: int = Field(1, ge=1, le=16)


class TierConfig(Strict):
    """One tier of the hierarchy: a VQ-VAE on the level below, trained on its own.

    Tier 1 encodes the waveform; tier k > 1 encodes the code vectors of tier k - 1. The
    encoder halves the length log2(``hop``) times; each code stands for ``hop``
    steps of the level below.
    """

    # The level below, as dvc.yaml's deps and the stages' --input take it (DVC's
    # templates have no arithmetic, so tier k cannot name encode@<k-1>'s output itself):
    # the prepared corpus for tier 1, the folder encode@<k-1> writes above. The stages
    # refuse a level that is not what the tier encodes (audio, or tier k-1's codes).
    input: str
    hop: Annotated[int, AfterValidator(_power_of_two)] = Field(8, le=1024)
    codebook_size: int = Field(64, ge=2, le=65536)
    code_dim: int = Field(32, gt=0, le=4096)
    # Channels of the strided encoder and the feed-forward decoder, and residual blocks
    # (dilations 1, 3, 9, ...) after each halving.
    width: int = Field(32, gt=0, le=4096)
    depth: int = Field(2, ge=0, le=16)
    # feedforward: one pass, trained on a multi-resolution spectral loss (tier 1) or
    # the cross-entropy of the codes below (tier k); wavenet: the autoregressive
    # conditional model of the level below, p(x | codes_1) and p(codes_k-1 | codes_k).
    decoder: Literal["feedforward", "wavenet"] = "feedforward"
    wavenet: TierWaveNetConfig = TierWaveNetConfig()
    # Tier 1, feed-forward: loss = mse + spectral_weight * multi-resolution STFT.
    spectral_weight: float = Field(1.0, ge=0.0, le=1000.0)
    # Training excerpts, in steps of the level below (samples for tier 1); a multiple of hop.
    segment: int = Field(4096, ge=2, le=10_000_000)
    train: TrainLoopConfig = TrainLoopConfig(steps=300, batch_size=8, learning_rate=1e-3)

    @model_validator(mode="after")
    def _segment_fits_hop(self) -> TierConfig:
        if self.segment % self.hop:
            raise ValueError(f"segment={self.segment} is not a multiple of hop={self.hop}")
        return self
