"""The building blocks of every params section: a strict base model and shared field types.

Each section's config class lives beside the code it configures (the mel front end in
``audio/mel.py``, a model's in ``models/``) and :mod:`wavegen_core.params` composes them
into ``Params``; what they all share is here, on the ground floor, so that none of them
needs the whole schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    """Base of every params section: unknown keys are an error, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def check_device(value: str) -> str:
    if not DEVICE_PATTERN.match(value):
        raise ValueError("must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return value


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd, so that a centred convolution reaches as far either way")
    return value


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"[{value[0]:g}, {value[1]:g}] is not a range: the low end comes first")
    return value


# A [low, high] range a value is drawn from (low == high fixes it).
Range = Annotated[tuple[float, float], AfterValidator(_ordered)]

# Kernel sizes of centred convolutions (conditioning, flow couplings, GAN residual blocks).
OddKernel = Annotated[int, AfterValidator(_odd)]


class TrainLoopConfig(Strict):
    """The knobs of the shared training loop; every training stage embeds one."""

    steps: int = Field(gt=0)
    batch_size: int = Field(8, gt=0)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    checkpoint_every: int = Field(100, gt=0)
    log_every: int = Field(10, gt=0)
    eval_every: int = Field(100, gt=0)
    device: str | None = Field(None, description="Overrides the top-level `device` for this stage.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 on a GPU that supports it, else fp32; fp16 needs CUDA and "
        "trains with a gradient scaler",
    )
    data_workers: int = Field(
        0,
        ge=0,
        description="processes that prepare the next batches while a step runs (0: the "
        "training process itself)",
    )
    nproc: int | Literal["auto"] = Field(
        1,
        description="data-parallel processes, launched through torchrun; auto: one per "
        "visible GPU (1 without one)",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else check_device(value)

    @field_validator("nproc")
    @classmethod
    def _nproc(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a process count of 1 or more, or 'auto'")
        return value
