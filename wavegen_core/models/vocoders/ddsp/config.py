"""The config of the DDSP family (:mod:`wavegen_core.models.vocoders.ddsp.model`)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from wavegen_core.models.vocoders.config import ConditioningConfig, VocoderSection
from wavegen_core.param_types import TrainLoopConfig

Coefficient = Annotated[float, Field(gt=0.0, lt=1.0)]


class DdspConfig(VocoderSection):
    """A polyphonic DDSP piano (Engel et al. 2020) driven by the MIDI's piano roll.

    Every key that sounds gets a bank of ``harmonics`` sinusoids at its partials, which
    a learnt per-key inharmonicity spreads as a piano's strings do; a small network
    shared by all keys sets, per frame, the note's amplitude, how it spreads over its
    partials and ``noise_bands`` bands of filtered noise; a learnt FIR reverb of
    ``reverb_seconds`` follows. Defaults are the tiny profile.
    """

    family: ClassVar[str] = "ddsp"
    year: ClassVar[int] = 2020
    # Its oscillators' phases, its noise and its reverb's tail run across its own chunks.
    whole_pieces: ClassVar[bool] = True
    # Its own oscillators play the notes: the conditioning's excitation is not rendered.
    uses_excitation: ClassVar[bool] = False

    harmonics: int = Field(24, ge=1, le=256)
    noise_bands: int = Field(12, ge=1, le=128)
    # Taps of each noise band's band-pass FIR (odd: a centred filter).
    noise_taps: int = Field(127, ge=3, le=4095)
    # The network shared across keys: a multilayer perceptron over each key's state.
    hidden: int = Field(64, ge=4, le=4096)
    layers: int = Field(2, ge=1, le=16)
    # Time since onset and since release are given to the network up to these limits,
    # and a released key keeps sounding (its decay) for release_seconds.
    onset_seconds: float = Field(4.0, gt=0.0, le=60.0)
    release_seconds: float = Field(0.5, gt=0.0, le=10.0)
    # Initial inharmonicity B of the lowest and the highest key (log-spaced between):
    # piano strings range from about 1e-5 in the bass to 1e-2 at the top (about 2e-4 at
    # middle C). A spectral loss moves B little, so the start matters.
    inharmonicity: tuple[Coefficient, Coefficient] = (1e-5, 1e-2)
    # Start each key's B from its value measured on the training audio (the partials'
    # positions in each key's averaged spectrum); keys the corpus does not play follow
    # the range above from their nearest measured neighbour.
    measure_inharmonicity: bool = True
    # The learnt reverb: an impulse response of this length added to the dry signal.
    reverb_seconds: float = Field(0.5, ge=0.0, le=10.0)
    # Training excerpts, in conditioning frames, and the frames of the roll before each
    # excerpt that the network sees (so that a note begun earlier has its true age).
    segment_frames: int = Field(64, ge=1, le=4096)
    history_frames: int = Field(128, ge=0, le=100_000)
    # Rendering: samples synthesised at a time (memory is bounded by this, not the piece).
    chunk_frames: int = Field(256, ge=1, le=1_000_000)
    # Adversarial fine-tuning (optional): from step adversarial_from on, the GAN family's
    # multi-period and multi-scale discriminators (periods, scales, discriminator_channels
    # as in the gan section) learn to tell renders from the true audio, and the render's
    # loss adds adversarial_weight x (adversarial + 2 x feature matching) to the spectral
    # distance. None: the spectral distance alone.
    adversarial_from: int | None = Field(None, ge=1)
    # The learning rate is multiplied by lr_decay every lr_decay_every steps (1: constant);
    # a last stretch at a tenth of the rate settles what the spectral loss's noise keeps
    # stirring.
    lr_decay: float = Field(0.1, gt=0.0, le=1.0)
    lr_decay_every: int = Field(250, ge=1)
    adversarial_weight: float = Field(0.1, gt=0.0, le=100.0)
    periods: list[Annotated[int, Field(ge=1, le=64)]] = [2, 3, 5, 7, 11]
    scales: int = Field(3, ge=1, le=8)
    discriminator_channels: int = Field(4, gt=0, le=1024)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=4, learning_rate=3e-3, checkpoint_every=100, eval_every=100
    )

    def roll_history(self, conditioning: ConditioningConfig, sample_rate: int) -> int:
        return self.history_frames
