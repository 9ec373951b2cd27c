"""The config of `prepare_data` (:mod:`wavegen_core.data.prepare`): where the corpus comes
from, how it is split and rendered.

Kept apart from the preparation code so that the params schema, which every stage loads,
does not make every stage depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from wavegen_core.audio.render import RenderConfig
from wavegen_core.midi.chorales import ChoralesConfig
from wavegen_core.param_types import Probability, Range, Seconds, Strict


class SplitsConfig(Strict):
    """Fractions of pieces held out; the rest is the train split. MAESTRO keeps its own."""

    validation: Probability = 0.1
    test: Probability = 0.1

    @model_validator(mode="after")
    def _leave_training_data(self) -> SplitsConfig:
        if self.validation + self.test >= 1.0:
            raise ValueError(
                f"validation + test = {self.validation + self.test:g} leaves no train split; "
                "their sum must be below 1"
            )
        return self


class VariantsConfig(Strict):
    """Stage `render_variants`: the transcriber's extra training material (see
    :mod:`wavegen_core.data.variants`).

    The ranges are [low, high], drawn uniformly per rendering; low == high fixes a
    value."""

    # Extra renderings of each train piece with MIDI; 0 renders none.
    renderings: int = Field(1, ge=0, le=64)
    # Pieces of generated piano writing, and their length and tempo range (bpm).
    etudes: int = Field(2, ge=0, le=100_000)
    etude_seconds: Seconds = Field(20.0, gt=0.0, le=600.0)
    etude_tempo: Range = (60.0, 160.0)
    # General MIDI programs drawn from (0-3: acoustic, bright, electric grand, honky-tonk).
    programs: list[Annotated[int, Field(ge=0, le=127)]] = Field(
        default_factory=lambda: [0, 1], min_length=1
    )
    # Largest transposition either way, in semitones (kept within MIDI 21-108).
    transpose: int = Field(12, ge=0, le=48)
    # Playback speed (2.0 plays twice as fast).
    tempo: Range = (0.85, 1.2)
    # FluidSynth's master gain, 0.2 by default (its output is 16-bit: loud settings
    # saturate).
    gain: Range = (0.1, 0.5)
    # Reverb room size and wet level, 0..1 each (FluidSynth: 0.2, 0.9), and chorus level,
    # 0..10 (FluidSynth: 2).
    reverb_room: Range = (0.1, 0.9)
    reverb_level: Range = (0.0, 0.8)
    chorus: Range = (0.0, 3.0)
    # Velocity response: a played velocity v sounds as 127 (v/127)^gamma.
    velocity_gamma: Range = (0.7, 1.4)

    @field_validator("reverb_room", "reverb_level")
    @classmethod
    def _unit(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] <= value[1] <= 1.0:
            raise ValueError("must lie within [0, 1]")
        return value

    @field_validator("chorus")
    @classmethod
    def _chorus(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] <= value[1] <= 10.0:
            raise ValueError("must lie within [0, 10]")
        return value

    @field_validator("tempo", "gain", "velocity_gamma", "etude_tempo")
    @classmethod
    def _positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] <= 0.0:
            raise ValueError("must be positive")
        return value


class DataConfig(Strict):
    """The `prepare_data` stage: where the corpus comes from and how it is split."""

    source: Literal["bach_chorales", "maestro", "folder"] = "bach_chorales"
    # The corpus directory for `maestro` and `folder`; a DVC dependency of prepare_data.
    root: str = "data/raw"
    # Bounds the corpus (the first pieces in a stable order); null keeps all of them
    # (350 chorales). The default is the tiny profile's.
    max_pieces: int | None = Field(24, gt=0)
    # Pieces shorter than this are rejected as unusable.
    min_duration: Seconds = Field(1.0, le=60.0)
    # An audio file and its MIDI are a pair only when the MIDI ends within this many
    # seconds of the audio's end; otherwise the MIDI is rejected (both durations named)
    # and the audio joins the unlabelled pool.
    pair_tolerance: Seconds = Field(3.0, le=600.0)
    splits: SplitsConfig = SplitsConfig()
    # Worker processes; 0 means one per CPU core.
    num_workers: int = Field(0, ge=0, le=256)
    chorales: ChoralesConfig = ChoralesConfig()
    render: RenderConfig = RenderConfig()
    variants: VariantsConfig = VariantsConfig()

    @model_validator(mode="after")
    def _root_exists(self) -> DataConfig:
        if self.source in ("maestro", "folder") and not Path(self.root).is_dir():
            raise ValueError(
                f"data.source={self.source!r} reads data.root={self.root!r}, "
                "which is not a directory"
            )
        return self


# Composers whose music is held out entirely: the training corpus is Bach's (the
# chorales), so C. P. E. Bach is kept out of both training and evaluation as well.
BACH_COMPOSERS = ("bach", "cpebach")


def _unseen_piece(corpus_id: str) -> str:
    composer = corpus_id.strip("/").split("/")[0].lower()
    if composer in BACH_COMPOSERS:
        raise ValueError(
            f"{corpus_id!r} is by Bach, whose chorales the models train on; unseen music "
            "must come from another composer of music21's corpus"
        )
    return corpus_id


class UnseenMusicConfig(Strict):
    """Music no model trained on: pieces of music21's corpus by other composers than Bach,
    performed like the chorales (data.chorales' humanisation, at `tempo_bpm`)."""

    # music21 corpus ids (composer/work...), parsed by music21.corpus.parse.
    pieces: list[Annotated[str, AfterValidator(_unseen_piece)]] = Field(
        default_factory=lambda: ["mozart/k545/movement1_exposition", "schoenberg/opus19/movement2"]
    )
    # Each piece's first seconds.
    seconds: Seconds = Field(10.0, gt=0.0, le=600.0)
    tempo_bpm: float = Field(100.0, gt=0.0, le=400.0)


class DevSetConfig(Strict):
    """The dev set, the one every choice is made on (a threshold, a recipe, a size): the
    validation split rendered `renderings` times on the training pianos other than the
    corpus's own, as `data.variants` renders, and `etudes` etudes of `etude_seconds`
    that no training run reaches. Training material, none of it trained on."""

    renderings: int = Field(1, ge=0, le=16)
    etudes: int = Field(2, ge=0, le=10_000)
    etude_seconds: Seconds = Field(10.0, gt=0.0, le=600.0)


class EvaluationConfig(Strict):
    """Stage `prepare_evaluation`: the dev set, and the sets the transcriber is scored on
    beside the test split, rendered with a piano no model trained on."""

    # Reserved for evaluation: never one of data.render.soundfont(s). Debian:
    # musescore-general-soundfont-small.
    soundfont: str = "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
    unseen_music: UnseenMusicConfig = UnseenMusicConfig()
    dev: DevSetConfig = DevSetConfig()


@dataclass(frozen=True)
class PrepareJob:
    """What preparing a corpus reads: the `data` section, the sample rate and the seed."""

    data: DataConfig
    sample_rate: int
    seed: int
