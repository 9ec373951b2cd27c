"""train.precision: bf16 autocast on CPU learns; fp16 is refused without CUDA, by key;
``choose_precision`` picks each precision's autocast and scaler."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from tests.training._train_script import CHECKPOINT, Batch, loop_config, mse, train
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.errors import WavegenError
from wavegen_core.params import ParamsError, load_params
from wavegen_core.training.metrics import read_curves
from wavegen_core.training.precision import choose_precision, resolve_precision


def test_a_bf16_run_on_cpu_computes_in_bf16_and_its_loss_falls(tmp_path) -> None:
    seen = []

    def recording_mse(model: nn.Module, batch: Batch):
        seen.append((torch.is_autocast_enabled("cpu"), model[0](batch[0]).dtype))
        return mse(model, batch)

    train(tmp_path, loop_config(60, precision="bf16"), dropout=0.0, loss_fn=recording_mse)
    assert set(seen) == {(True, torch.bfloat16)}
    _, losses = read_curves(tmp_path / "metrics")["train/loss"]
    assert losses[-1] < losses[0] / 5
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    assert checkpoint["config"]["precision"] == "bf16"  # never resumed as an fp32 run
    assert all(t.dtype == torch.float32 for t in checkpoint["state"].values())
    assert "scaler" not in checkpoint


def test_fp32_and_auto_on_cpu_run_without_autocast_and_record_nothing(tmp_path) -> None:
    seen = []

    def recording_mse(model: nn.Module, batch: Batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return mse(model, batch)

    train(tmp_path, loop_config(3), loss_fn=recording_mse)  # precision: auto
    assert seen == [False] * 3
    assert "precision" not in load_checkpoint(tmp_path / CHECKPOINT)["config"]
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_fp16_on_cpu_is_refused_before_training() -> None:
    with pytest.raises(WavegenError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize(
    ("train_section", "top_device", "named"),
    [
        ({"precision": "fp16", "device": "cpu"}, "auto", "transcription.train.device = 'cpu'"),
        ({"precision": "fp16"}, "cpu", "device = 'cpu'"),
    ],
)
def test_fp16_without_cuda_is_refused_at_validation_naming_the_key(
    tmp_path, train_section, top_device, named
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {"device": top_device, "transcription": {"train": {"steps": 10, **train_section}}}
        )
    )
    with pytest.raises(ParamsError) as error:
        load_params(path)
    message = str(error.value)
    assert "transcription.train.precision = 'fp16' needs a CUDA GPU" in message
    assert named in message


def test_fp16_with_device_auto_is_refused_on_a_machine_without_cuda(tmp_path, monkeypatch) -> None:
    import wavegen_core.params

    monkeypatch.setattr(wavegen_core.params, "_cuda_available", lambda: False)
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump({"vocoder": {"gan": {"train": {"steps": 5, "precision": "fp16"}}}})
    )
    with pytest.raises(ParamsError, match=r"vocoder\.gan\.train\.precision = 'fp16'.*no CUDA GPU"):
        load_params(path)


def test_precision_and_nproc_reject_unknown_values(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"transcription": {"train": {"steps": 5, "precision": "fp8"}}}))
    with pytest.raises(ParamsError, match="transcription.train.precision"):
        load_params(path)
    path.write_text(yaml.safe_dump({"transcription": {"train": {"steps": 5, "nproc": 0}}}))
    with pytest.raises(ParamsError, match="transcription.train.nproc"):
        load_params(path)


def test_bf16_autocasts_to_bf16_without_a_scaler_and_marks_the_run_config() -> None:
    precision = choose_precision("bf16", torch.device("cpu"))
    with precision.autocast():
        assert torch.is_autocast_enabled("cpu")
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16
    assert precision.scaler is None
    config = {"model": {"width": 3}}
    assert precision.run_config(config) == {"model": {"width": 3}, "precision": "bf16"}
    assert config == {"model": {"width": 3}}  # the caller's config is left as it was


@pytest.mark.parametrize("requested", ["fp32", "auto"])
def test_fp32_on_cpu_runs_without_autocast_or_scaler_and_leaves_the_run_config(
    requested,
) -> None:
    precision = choose_precision(requested, torch.device("cpu"))
    assert precision.name == "fp32" and precision.scaler is None
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float32
    config = {"model": {"width": 3}}
    assert precision.run_config(config) == config


@pytest.mark.filterwarnings("ignore:.*CUDA is not available")
def test_fp16_on_a_cuda_device_gets_a_gradient_scaler_and_fp16_autocast() -> None:
    # Built, not entered: on a machine without CUDA both only warn that they are off.
    precision = choose_precision("fp16", torch.device("cuda"))
    assert precision.name == "fp16"
    assert isinstance(precision.scaler, torch.amp.GradScaler)
    context = precision.autocast()
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.float16


def test_an_unknown_precision_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="'fp8': not one of auto, fp32, bf16, fp16"):
        choose_precision("fp8", torch.device("cpu"))
