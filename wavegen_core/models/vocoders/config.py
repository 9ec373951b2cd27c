"""What every vocoder family's config shares: the MIDI conditioning, and the base of a
family's params section (``vocoder.<family>``), through which the families are found.

A family is a folder ``vocoders/<family>/`` holding ``model.py`` (the network and its
spec) and ``config.py`` (a subclass of :class:`VocoderSection`). :func:`vocoder_sections`
finds the latter, so that the params schema composes a section per family without a list
to keep. Nothing here imports a network's code: the params schema, which every stage
loads, stays apart from the models' code (and so does each stage's list of code deps in
``dvc.yaml``).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from wavegen_core.param_types import OddKernel, Strict, TrainLoopConfig

# The excitation's decay stops after this many time constants (e^-3, 5 % of the attack).
EXCITATION_MEMORY_DECAYS = 3.0
# A released note's excitation fades out linearly over this long (a damper is quick).
EXCITATION_RELEASE_SECONDS = 0.2


class ConditioningConfig(Strict):
    """MIDI conditioning shared by every vocoder family.

    The piano roll of the MIDI (onset, sounding and velocity per key) at one frame
    per ``hop_length`` samples is encoded by ``layers`` convolutions of
    ``kernel_size`` frames into ``channels`` features, then brought to the sample
    rate: learnt transposed convolutions (``transposed``) or repetition followed by a
    convolution (``repeat``).

    ``excitation: harmonic`` adds a source signal at the sample rate, rendered from the
    same MIDI (the neural source-filter idea, Wang et al. 2019): per sounding note, sines
    at its first ``excitation_harmonics`` harmonics, falling by e every
    ``excitation_decay_seconds`` after the onset and fading out after the release, plus
    a burst of noise at each onset. Each harmonic is a channel (summed over the notes),
    the noise another; a network then shapes a spectrum that already has the right
    pitches instead of having to discover them.
    """

    # 256 samples = 62.5 frames per second at 16 kHz (16 ms, half the transcriber's frame).
    hop_length: int = Field(256, ge=2, le=4096)
    channels: int = Field(32, gt=0, le=1024)
    layers: int = Field(2, ge=1, le=16)
    kernel_size: OddKernel = Field(3, ge=1, le=31)
    upsample: Literal["transposed", "repeat"] = "transposed"
    excitation: Literal["none", "harmonic"] = "harmonic"
    excitation_harmonics: int = Field(8, ge=1, le=64)
    excitation_decay_seconds: float = Field(1.0, gt=0.0, le=30.0)

    def excitation_memory_seconds(self) -> float:
        """How far back the excitation reads a note's onset: after this its decay stops
        (at e^-EXCITATION_MEMORY_DECAYS) and longer ago is the same."""
        return EXCITATION_MEMORY_DECAYS * self.excitation_decay_seconds

    def history_frames(self, sample_rate: int) -> int:
        """Frames of the roll before an excerpt that its conditioning reads: those the
        excitation needs for the notes' age, none without one."""
        if self.excitation == "none":
            return 0
        seconds = max(self.excitation_memory_seconds(), EXCITATION_RELEASE_SECONDS)
        return math.ceil(seconds * sample_rate / self.hop_length) + 1


# Log-mel frames are given to the conditioning network centred and scaled by these
# (log magnitudes run from log(1e-5) = -11.5 in silence to about +3 at a loud peak), so
# that they start on the roll's scale.
MEL_FRAME_CENTRE = -5.0
MEL_FRAME_SCALE = 4.0


class MelFramesConfig(Strict):
    """Log-mel frames of the audio as dense conditioning (phase-free, as the vocoders of
    Tacotron 2 and most neural vocoders since are conditioned).

    One frame per ``vocoder.conditioning.hop_length`` samples, so that the frames line
    up with the roll's: frame ``i`` is the magnitude spectrum of ``n_fft`` samples centred
    on sample ``i * hop_length``, on ``bins`` mel bands from ``fmin`` to ``fmax``, in log.
    ``inputs`` says whether the conditioning network reads the mel alone or the roll
    beside it.
    """

    inputs: Literal["mel", "roll_and_mel"] = "mel"
    bins: int = Field(80, ge=4, le=512)
    n_fft: int = Field(1024, ge=16, le=16384)
    fmin: float = Field(30.0, ge=0.0)
    fmax: float = Field(8000.0, gt=0.0)

    @model_validator(mode="after")
    def _band_order(self) -> MelFramesConfig:
        if self.fmin >= self.fmax:
            raise ValueError(f"fmin={self.fmin:g} must be below fmax={self.fmax:g}")
        return self


class MelConditioningConfig(MelFramesConfig):
    """``vocoder.mel``: the families also trained on log-mel frames of the audio.

    Each family listed gets stages of its own, ``train_vocoder_mel@<family>`` (trained on
    the true audio's mel) and ``synthesize_mel@<family>``. At synthesis there is no true
    audio: the mel is that of ``source``'s render of the same MIDI (the two-stage design,
    MIDI -> spectrogram -> waveform, with a roll-conditioned family drawing the
    spectrogram); the test pieces are also rendered from their true audio's mel, the
    ceiling that a perfect spectrogram would give. ``excitation`` replaces
    ``vocoder.conditioning.excitation`` for these models (its sinusoids carry the MIDI's
    phases, which the mel does not need).
    """

    families: list[str] = ["flow"]
    source: str = "ddsp"
    excitation: Literal["none", "harmonic"] = "none"

    def frames(self) -> MelFramesConfig:
        """What a mel-conditioned model records and is built from."""
        return MelFramesConfig.model_validate(
            self.model_dump(include=set(MelFramesConfig.model_fields))
        )


class VocoderSection(Strict):
    """Base of a vocoder family's params section; each family subclasses it once.

    Besides its fields (the model's hyper-parameters, ``segment_frames`` and ``train``),
    a family says whether it samples autoregressively, and the default and bounds of its
    sampling temperature (``vocoder.synthesize.temperature.<family>``, kept apart from
    the section so that changing it reruns synthesis, not training); a deterministic
    family has none.
    """

    family: ClassVar[str]
    # The year the family's paper appeared: families are listed in that order.
    year: ClassVar[int]
    autoregressive: ClassVar[bool] = False
    # Whether ``generate`` renders a whole piece itself in bounded memory (streaming its
    # conditioning), so pieces are given whole; otherwise they are cut into chunks with
    # conditioning context on either side.
    whole_pieces: ClassVar[bool] = False
    # A pydantic ``Field(default, ...)`` for the family's sampling temperature, or None.
    sampling_temperature: ClassVar[Any] = None
    # Whether the family takes the conditioning's excitation (``excitation: harmonic``)
    # in; one with oscillators of its own ignores it.
    uses_excitation: ClassVar[bool] = True
    # Whether the family can be conditioned on log-mel frames (``vocoder.mel.families``).
    takes_mel: ClassVar[bool] = False

    if TYPE_CHECKING:
        # Every family has both, declared in its own class: fields declared here would
        # come first in every section, and reorder what its checkpoints record.
        segment_frames: int
        train: TrainLoopConfig

    def check_conditioning(self, conditioning: ConditioningConfig) -> None:
        """Raise ValueError when the family cannot be built on ``conditioning``."""

    def roll_history(self, conditioning: ConditioningConfig, sample_rate: int) -> int:
        """Frames of the roll before each training excerpt that the family reads (its
        ``loss`` then gets a roll that many frames longer than the audio): by default
        those its conditioning reads (see :meth:`ConditioningConfig.history_frames`)."""
        return conditioning.history_frames(sample_rate)

    @classmethod
    def default_temperature(cls) -> float:
        """The sampling temperature the family draws at unless told otherwise."""
        field = cls.sampling_temperature
        if field is None:
            raise TypeError(f"the {cls.family} family is deterministic: it has no temperature")
        return float(field.default)


def vocoder_sections() -> dict[str, type[VocoderSection]]:
    """Every vocoder family's section class by family name, from ``<family>/config.py``
    of each family folder in ``vocoders/``."""
    package = importlib.import_module("wavegen_core.models.vocoders")
    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg:
            importlib.import_module(f"{package.__name__}.{module.name}.config")
    found: dict[str, type[VocoderSection]] = {}
    pending = list(VocoderSection.__subclasses__())
    while pending:
        section = pending.pop()
        pending += section.__subclasses__()
        if "family" in section.__dict__:
            found[section.family] = section
    return dict(sorted(found.items(), key=lambda item: (item[1].year, item[0])))
