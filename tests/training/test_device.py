"""choose_device: auto picks what is there; a missing device is refused by name."""

from __future__ import annotations

import pytest
import torch

from wavegen_core.errors import WavegenError
from wavegen_core.training.device import DeviceUnavailableError, choose_device


@pytest.fixture
def no_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("requested", ["auto", None, "cpu"])
def test_cpu_when_no_gpu(no_cuda, requested) -> None:
    assert choose_device(requested) == torch.device("cpu")


@pytest.mark.parametrize("requested", ["cuda", "cuda:1"])
def test_cuda_without_gpu_is_a_clear_error(no_cuda, requested) -> None:
    with pytest.raises(DeviceUnavailableError) as raised:
        choose_device(requested, param="transcriber.loop.device")

    message = str(raised.value)
    assert f"transcriber.loop.device={requested!r}" in message
    assert "'auto' or 'cpu'" in message
    assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, WavegenError)
