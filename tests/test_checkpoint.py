"""Checkpoints are written whole or not at all, and load without running pickled code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wavegen_core.checkpoint import load_checkpoint, save_checkpoint
from wavegen_core.seeding import capture_rng


def _save(path, model: nn.Module, step: int) -> None:
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(path, model, optimiser, step=step, config={"width": 3}, metrics={"loss": 1.0})


def test_successful_save_leaves_only_the_checkpoint(tmp_path) -> None:
    model = nn.Linear(3, 1)
    _save(tmp_path / "model.pt", model, step=1)
    _save(tmp_path / "model.pt", model, step=2)

    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    checkpoint = load_checkpoint(tmp_path / "model.pt")
    assert checkpoint["step"] == 2 and checkpoint["config"] == {"width": 3}
    assert checkpoint["scheduler"] is None
    assert torch.equal(checkpoint["state"]["weight"], model.weight.detach())


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch) -> None:
    model = nn.Linear(3, 1)
    _save(tmp_path / "model.pt", model, step=5)

    def save_half_then_fail(obj, destination) -> None:
        destination.write(b"half a checkpoint")
        raise OSError("no space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="no space left"):
        _save(tmp_path / "model.pt", model, step=10)
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert load_checkpoint(tmp_path / "model.pt")["step"] == 5


def test_random_state_survives_a_weights_only_load(tmp_path) -> None:
    model = nn.Linear(3, 1)
    _save(tmp_path / "model.pt", model, step=1)
    saved = load_checkpoint(tmp_path / "model.pt")["rng"]
    now = capture_rng()

    assert saved["python"] == now["python"]
    assert torch.equal(saved["numpy"]["key"], now["numpy"]["key"])
    assert torch.equal(saved["torch"], now["torch"])


def test_equal_states_give_equal_bytes_whatever_the_file_name(tmp_path) -> None:
    """DVC compares outputs by hash: the same training state must be the same file."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    state = torch.get_rng_state()
    _save(tmp_path / "a.pt", model, step=1)
    torch.set_rng_state(state)
    (tmp_path / "b").mkdir()
    _save(tmp_path / "b" / "checkpoint.pt", model, step=1)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "checkpoint.pt").read_bytes()


def test_a_state_loaded_back_saves_to_the_same_bytes(tmp_path) -> None:
    """What a resumed run saves: strings that came out of a pickle, not the optimiser's
    own interned ones, and metrics first logged in another order."""
    import zipfile

    from wavegen_core.checkpoint import load_training_state

    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimiser.step()
    rng = torch.get_rng_state()
    metrics = {"train/loss": 1.0, "eval/loss": 2.0}
    save_checkpoint(tmp_path / "a.pt", model, optimiser, step=1, config={}, metrics=metrics)

    loaded = load_checkpoint(tmp_path / "a.pt")
    again = nn.Linear(3, 1)
    again_optimiser = torch.optim.Adam(again.parameters(), lr=0.01)
    load_training_state(loaded, again, again_optimiser)
    torch.set_rng_state(rng)
    reordered = dict(reversed(list(loaded["metrics"].items())))
    save_checkpoint(tmp_path / "b.pt", again, again_optimiser, step=1, config={}, metrics=reordered)

    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.pt") as archive:
        assert archive.testzip() is None  # every CRC holds after the id was rewritten
        (name,) = [n for n in archive.namelist() if n.endswith(".data/serialization_id")]
        assert len(archive.read(name)) == 40 and int(archive.read(name), 16) >= 0
