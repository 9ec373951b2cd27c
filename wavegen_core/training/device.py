"""Choosing the device a stage computes on (the stage contract, rule 7)."""

from __future__ import annotations

import torch

from wavegen_core.errors import WavegenError
from wavegen_core.progress import log


class DeviceUnavailableError(WavegenError, RuntimeError):
    """The device named in params does not exist on this machine."""


def choose_device(requested: str | None, *, param: str = "device") -> torch.device:
    """Turn the ``device`` param into a torch device, refusing one this machine lacks.

    ``auto`` (or None) means CUDA when present, else CPU; Apple's MPS is only used when
    asked for by name, because the CPU is the device on which runs are bit-for-bit
    repeatable. ``param`` is the key path reported when the device is missing (for
    example ``transcriber.loop.device``).
    """
    if requested in (None, "auto"):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
        _check_available(device, f"{param}={requested!r}")
    log.info("device: %s (%s=%r)", _describe(device), param, requested or "auto")
    return device


def _check_available(device: torch.device, setting: str) -> None:
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailableError(
                f"{setting} asks for a CUDA GPU, but torch {torch.__version__} sees none on "
                "this machine; set it to 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= count:
            raise DeviceUnavailableError(
                f"{setting} asks for GPU {device.index}, but this machine has {count} "
                f"(cuda:0 to cuda:{count - 1}); pick one of those or 'auto'"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(
            f"{setting} asks for Apple's MPS, which this machine lacks; set it to 'auto' or 'cpu'"
        )


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
