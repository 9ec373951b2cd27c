"""The arithmetic of a run's forward passes: fp32, bf16 under autocast, or fp16 with a
gradient scaler.

``loop.precision`` is ``auto`` (bf16 on a CUDA GPU that has it, fp32 anywhere else) or
one of :data:`PRECISIONS`. Weights, optimiser state and evaluation stay fp32 whatever
it is; fp16 is CUDA only, and its scaler's state travels in the checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from wavegen_core.errors import WavegenError

# Each precision's autocast dtype; fp32 runs without autocast.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """A run's precision, resolved for its device: its name, a factory of the context
    its forward passes run in, and fp16's gradient scaler (None otherwise)."""

    name: str
    autocast: Callable[[], Any]
    scaler: torch.amp.GradScaler | None

    def run_config(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        """``config`` with this precision in it (fp32, the plain arithmetic, adds nothing):
        another arithmetic is another run, so a checkpoint of one must not resume the other."""
        if self.name == "fp32":
            return config
        return {**config, "precision": self.name}


def choose_precision(requested: str, device: torch.device) -> Precision:
    """``loop.precision`` on ``device``, with its autocast and, for fp16, a fresh scaler."""
    name = resolve_precision(requested, device)
    scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
    return Precision(name, autocast_factory(name, device), scaler)


def resolve_precision(requested: str, device: torch.device) -> str:
    """``loop.precision`` on ``device``: auto is bf16 on a CUDA GPU that supports it,
    fp32 anywhere else; fp16 is CUDA only (params validation refuses it earlier)."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r}: not one of auto, {', '.join(PRECISIONS)}")
    if requested == "fp16" and device.type != "cuda":
        raise WavegenError(
            f"precision fp16 needs a CUDA device (its gradient scaler); this stage trains on "
            f"{device}: use bf16 or fp32"
        )
    return requested


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any]:
    """A factory of the context the forward passes run in: autocast to the precision's
    dtype, or no context at all for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)
