"""The config of the Music Transformer (:mod:`wavegen_core.models.symbolic.music_transformer`),
also the prior's layers.

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from wavegen_core.param_types import Probability, Strict


class MusicTransformerModelConfig(Strict):
    """A decoder-only transformer over performance events (Huang et al. 2019).

    Defaults are the tiny profile. The full profile is about the size of the paper's
    Piano-e-Competition model: 6 layers, 8 heads, width 512, feed-forward 1,024,
    relative attention over sequences of 2,048 events, dropout 0.1.
    """

    # relative: relative global attention with the skewing procedure (the paper);
    # absolute: sinusoidal positions added to the input (the vanilla baseline).
    attention: Literal["relative", "absolute"] = "relative"
    d_model: int = Field(64, gt=0, le=8192)
    n_layers: int = Field(2, gt=0, le=64)
    n_heads: int = Field(4, gt=0, le=64)
    d_ff: int = Field(128, gt=0, le=32768)
    dropout: Probability = 0.1
    # Longest sequence the model attends over (training windows and the sampling
    # window); the relative embeddings cover distances 0 .. context - 1.
    context: int = Field(256, ge=8, le=16384)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> MusicTransformerModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        return self
