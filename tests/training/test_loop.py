"""fit: learning, self-describing checkpoints, NaN handling, reruns and foreign checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from tests.training._train_script import (
    CHECKPOINT,
    METRICS,
    Batch,
    loop_config,
    make_model,
    mse,
    train,
)
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.training.loop import NonFiniteLossError, move_to
from wavegen_core.training.metrics import read_curves


def _nan_at(step: int):
    """``mse``, but NaN on its ``step``-th call (the step number, in a fresh run)."""
    calls = 0

    def loss_fn(model: nn.Module, batch: Batch):
        nonlocal calls
        calls += 1
        loss, extras = mse(model, batch)
        return (loss * math.nan if calls == step else loss), extras

    return loss_fn


def test_loss_falls_and_outputs_are_written(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = train(tmp_path, loop_config(60, eval_every=5, log_every=5), dropout=0.0)

    curves = read_curves(tmp_path / METRICS)
    train_steps, train_loss = curves["train/loss"]
    assert train_steps == list(range(5, 61, 5))
    assert train_loss[-1] < train_loss[0] / 10
    _, eval_loss = curves["eval/loss"]
    assert eval_loss[-1] < eval_loss[0] / 10
    assert result.step == 60 and result.metrics["eval/loss"] == eval_loss[-1]

    summary = json.loads((tmp_path / METRICS / "metrics.json").read_text())
    assert summary == {"step": 60, **result.metrics}
    assert (tmp_path / METRICS / "loss_curves.png").read_bytes().startswith(b"\x89PNG")
    # dvclive is told never to write a dvc.yaml, neither in cwd nor beside the metrics.
    assert not list(tmp_path.rglob("dvc.yaml"))


def test_checkpoint_describes_itself(tmp_path) -> None:
    loop = loop_config(12)
    train(tmp_path, loop)

    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    assert checkpoint["step"] == 12
    assert checkpoint["config"] == {
        "model": {"features": 4, "dropout": 0.2},
        "loop": loop.model_dump(),
    }
    assert {"train/loss", "train/grad_norm", "train/lr", "train/mae", "eval/loss"} <= set(
        checkpoint["metrics"]
    )
    assert checkpoint["scheduler"]["last_epoch"] == 12
    # The weights rebuild the model from the checkpoint's own config.
    make_model(checkpoint["config"]["model"]["dropout"]).load_state_dict(checkpoint["state"])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 7") as raised:
        train(tmp_path, loop_config(20), loss_fn=_nan_at(7))

    assert "last good checkpoint, step 5, is kept" in str(raised.value)
    assert raised.value.step == 7 and raised.value.saved_step == 5
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 5


def test_non_finite_gradient_is_caught_before_any_checkpoint(tmp_path) -> None:
    def infinite_gradient(model: nn.Module, batch: Batch):
        loss, extras = mse(model, batch)
        # sqrt has an infinite slope at 0: a finite loss with a non-finite gradient.
        return loss + torch.sqrt(model[0].weight.sum() * 0), extras

    with pytest.raises(NonFiniteLossError, match="gradient norm is nan") as raised:
        train(tmp_path, loop_config(20), loss_fn=infinite_gradient)

    assert "no checkpoint had been written yet" in str(raised.value)
    assert not (tmp_path / CHECKPOINT).exists()


def test_rerun_of_finished_run_only_reemits_metrics(tmp_path) -> None:
    first = train(tmp_path, loop_config(10))
    (tmp_path / METRICS / "metrics.json").unlink()
    (tmp_path / METRICS / "loss_curves.png").unlink()

    def must_not_train(model: nn.Module, batch: Batch):
        raise AssertionError("a finished run trained again")

    second = train(tmp_path, loop_config(10), loss_fn=must_not_train)

    assert second == first
    assert json.loads((tmp_path / METRICS / "metrics.json").read_text())["step"] == 10
    assert (tmp_path / METRICS / "loss_curves.png").exists()


def test_checkpoint_of_another_config_is_replaced_not_resumed(tmp_path) -> None:
    train(tmp_path, loop_config(10, learning_rate=1e-1))
    result = train(tmp_path, loop_config(10))

    fresh = tmp_path / "fresh"
    assert result == train(fresh, loop_config(10))
    assert load_checkpoint(tmp_path / CHECKPOINT)["config"]["loop"]["learning_rate"] == 3e-2
    assert read_curves(tmp_path / METRICS) == read_curves(fresh / METRICS)


def test_weights_do_not_depend_on_how_often_evaluation_runs(tmp_path) -> None:
    train(tmp_path / "often", loop_config(12, eval_every=2))
    train(tmp_path / "rarely", loop_config(12, eval_every=12))

    often = load_checkpoint(tmp_path / "often" / CHECKPOINT)["state"]
    rarely = load_checkpoint(tmp_path / "rarely" / CHECKPOINT)["state"]
    assert all(torch.equal(often[name], rarely[name]) for name in often)


def test_move_to_reaches_tensors_inside_containers() -> None:
    batch = {"audio": torch.zeros(2), "notes": [torch.ones(1), (torch.ones(1), "id")], "n": 3}
    moved = move_to(batch, torch.device("meta"))
    assert moved["audio"].is_meta and moved["notes"][0].is_meta
    assert moved["notes"][1][0].is_meta and moved["notes"][1][1] == "id"
    assert moved["n"] == 3


def _two_phase(tmp_path, steps: int, sub: str):
    """A toy adversarial-shaped run: a 'critic' and a 'maker' half of one model, each with
    its own optimiser and decaying schedule; the maker's phase reads what the critic's
    left in ``carry``."""
    from tests.training._train_script import SEED, batches, regression_data
    from wavegen_core.models.spec import Optimiser
    from wavegen_core.seeding import seed_everything
    from wavegen_core.training.loop import fit

    seed_everything(SEED)
    model = nn.ModuleDict({"critic": nn.Linear(4, 1), "maker": nn.Linear(4, 1)})
    optimisers = []
    for name in ("critic", "maker"):
        optimiser = torch.optim.AdamW(model[name].parameters(), lr=0.05, betas=(0.8, 0.99))
        decay = torch.optim.lr_scheduler.StepLR(optimiser, step_size=2, gamma=0.5)
        optimisers.append(Optimiser(name, optimiser, decay))

    def critic(model, batch, carry):
        inputs, targets = batch
        carry["made"] = model["maker"](inputs)
        loss = ((model["critic"](inputs) - carry["made"].detach()) ** 2).mean()
        return loss, {"critic_term": loss.detach()}

    def maker(model, batch, carry):
        inputs, targets = batch
        return ((carry["made"] - targets[:, None]) ** 2).mean(), {}

    train_data, _ = regression_data(SEED)
    return fit(
        model,
        optimisers,
        loss_fn={"critic": critic, "maker": maker},
        batch_for_step=batches(train_data, 8, SEED),
        loop=loop_config(steps, checkpoint_every=2),
        checkpoint_path=tmp_path / sub / CHECKPOINT,
        metrics_dir=tmp_path / sub / METRICS,
        config={"run": "two-phase"},
        device=torch.device("cpu"),
    ), model


def test_named_optimisers_step_in_order_each_on_its_own_loss_and_resume_exactly(
    tmp_path,
) -> None:
    result, model = _two_phase(tmp_path, 6, "straight")
    checkpoint = load_checkpoint(tmp_path / "straight" / CHECKPOINT)
    assert set(checkpoint["optimizer"]) == set(checkpoint["scheduler"]) == {"critic", "maker"}
    # Each schedule halved its rate every 2 steps: 6 steps, three halvings.
    assert result.metrics["train/critic_lr"] == pytest.approx(0.05 / 8)
    assert result.metrics["train/maker_lr"] == pytest.approx(0.05 / 8)
    assert result.metrics["train/loss"] == pytest.approx(
        result.metrics["train/critic_loss"] + result.metrics["train/maker_loss"]
    )
    assert "train/critic_term" in result.metrics
    _two_phase(tmp_path, 4, "resumed")
    _, resumed = _two_phase(tmp_path, 6, "resumed")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_named_optimisers_need_one_loss_each(tmp_path) -> None:
    from wavegen_core.models.spec import Optimiser
    from wavegen_core.training.loop import fit

    model = nn.Linear(2, 1)
    optimisers = [
        Optimiser(name, torch.optim.SGD(model.parameters(), lr=0.1)) for name in ("a", "b")
    ]
    with pytest.raises(ValueError, match=r"loss_fn must map each optimiser's name \(a, b\)"):
        fit(
            model,
            optimisers,
            loss_fn={"a": lambda m, b, c: (m(b).sum(), {})},
            batch_for_step=lambda step: torch.ones(1, 2),
            loop=loop_config(1),
            checkpoint_path=tmp_path / CHECKPOINT,
            metrics_dir=tmp_path / METRICS,
            config={},
            device=torch.device("cpu"),
        )


def test_an_optimiser_with_a_first_step_joins_training_there(tmp_path) -> None:
    """Before its first step a phase is skipped: its loss is not computed, its
    parameters do not move, and what it would leave in the carry is missing."""
    from wavegen_core.models.spec import Optimiser
    from wavegen_core.training.loop import fit

    torch.manual_seed(0)
    model = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)})
    calls: dict[str, list[bool]] = {"late": [], "early": []}

    def late(m, batch, carry):
        calls["late"].append(True)
        carry["late ran"] = True
        return m["a"](batch).pow(2).sum(), {}

    def early(m, batch, carry):
        calls["early"].append("late ran" in carry)
        return m["b"](batch).pow(2).sum(), {}

    optimisers = [
        Optimiser("late", torch.optim.SGD(model["a"].parameters(), lr=0.1), first_step=4),
        Optimiser("early", torch.optim.SGD(model["b"].parameters(), lr=0.1)),
    ]
    fit(
        model,
        optimisers,
        loss_fn={"late": late, "early": early},
        batch_for_step=lambda step: torch.ones(1, 2),
        loop=loop_config(5),
        checkpoint_path=tmp_path / CHECKPOINT,
        metrics_dir=tmp_path / METRICS,
        config={},
        device=torch.device("cpu"),
    )
    assert len(calls["late"]) == 2  # steps 4 and 5
    assert calls["early"] == [False, False, False, True, True]


class _Crash(RuntimeError):
    pass


def test_loader_workers_make_the_same_batches_and_resume_exactly(tmp_path) -> None:
    train(tmp_path / "here", loop_config(20))
    train(tmp_path / "workers", loop_config(20, data_workers=2))

    def crash_at_12(step: int) -> None:
        if step == 12:
            raise _Crash

    with pytest.raises(_Crash):
        train(tmp_path / "crashed", loop_config(20, data_workers=2), on_step=crash_at_12)
    train(tmp_path / "crashed", loop_config(20, data_workers=2))  # resumes from step 10
    reference = load_checkpoint(tmp_path / "here" / CHECKPOINT)
    for run in ("workers", "crashed"):
        checkpoint = load_checkpoint(tmp_path / run / CHECKPOINT)
        for key, value in reference["state"].items():
            assert torch.equal(checkpoint["state"][key], value), (run, key)
        assert checkpoint["metrics"] == reference["metrics"]
