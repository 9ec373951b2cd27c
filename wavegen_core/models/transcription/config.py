"""The config of the Onsets and Frames transcriber (:mod:`.onsets_frames`).

Kept apart from the model code so that the params schema, which every stage loads,
does not make every stage depend on the network's code.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from wavegen_core.audio.mel import MelConfig
from wavegen_core.param_types import Probability, Strict


class TranscriberModelConfig(Strict):
    """The Onsets and Frames piano transcriber (Hawthorne et al. 2018).

    Defaults are the tiny profile. Full size, from the paper (section 3, with the
    acoustic model of Kelz et al. 2016): ``mel.n_mels`` 229, ``conv_channels``
    [32, 32, 64], ``fc_units`` 512, ``lstm_units`` 128 per direction, bidirectional,
    ``conv_dropout`` 0.25, ``fc_dropout`` 0.5, ``onset_weight`` 5.0.
    """

    mel: MelConfig = MelConfig()
    # Output channels of the three 3x3 conv-BN-ReLU layers of the acoustic model;
    # the second and third are each followed by max-pooling over frequency.
    conv_channels: tuple[
        Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]
    ] = (8, 8, 16)
    # Width of the fully connected layer that ends the acoustic model.
    fc_units: int = Field(64, gt=0, le=8192)
    # LSTM units per direction of the onset, offset and frame stacks.
    lstm_units: int = Field(32, gt=0, le=4096)
    bidirectional: bool = True
    conv_dropout: Probability = 0.1
    fc_dropout: Probability = 0.1
    # The weighted frame loss (section 3): frame errors in the first
    # `onset_weight_frames` frames of a note count `onset_weight` times, the k-th frame
    # after them onset_weight / sqrt(k + 1), at least 1, until the note ends.
    # 1.0 turns the weighting off.
    onset_weight: float = Field(5.0, ge=1.0, le=100.0)
    onset_weight_frames: int = Field(2, ge=0, le=100)
    # Onsets and offsets mark one frame per note, about 0.2 % of the onset targets, so
    # a small model trained briefly learns to predict none; counting each positive this
    # many times (BCE pos_weight) gets the detectors going. The paper trains long
    # enough to need none: 1.0 (the full profile) is its loss.
    onset_positive_weight: float = Field(10.0, ge=1.0, le=1000.0)
    # Weight of the velocity loss in the total; the paper adds the losses unweighted.
    velocity_loss_weight: float = Field(1.0, ge=0.0)
