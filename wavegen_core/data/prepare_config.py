"""The config of `prepare_data` (:mod:`wavegen_core.data.prepare`): where the corpus comes
from, how it is split and rendered.

Kept apart from the preparation code so that the params schema, which every stage loads,
does not make every stage depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from wavegen_core.audio.render import RenderConfig
from wavegen_core.midi.chorales import ChoralesConfig
from wavegen_core.schema import Probability, Seconds, Strict


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
    splits: SplitsConfig = SplitsConfig()
    # Worker processes; 0 means one per CPU core.
    num_workers: int = Field(0, ge=0, le=256)
    chorales: ChoralesConfig = ChoralesConfig()
    render: RenderConfig = RenderConfig()

    @model_validator(mode="after")
    def _root_exists(self) -> DataConfig:
        if self.source in ("maestro", "folder") and not Path(self.root).is_dir():
            raise ValueError(
                f"data.source={self.source!r} reads data.root={self.root!r}, "
                "which is not a directory"
            )
        return self


@dataclass(frozen=True)
class PrepareJob:
    """What preparing a corpus reads: the `data` section, the sample rate and the seed."""

    data: DataConfig
    sample_rate: int
    seed: int
