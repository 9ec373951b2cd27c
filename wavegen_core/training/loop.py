"""The training loop every training stage shares: resumable, exact and loud about NaNs.

A stage builds its model, optimiser and data, then calls :func:`fit`. Steps are numbered
from 1; a checkpoint's ``step`` counts the steps its weights have seen. A run killed at
any point and started again with the same arguments resumes from its last checkpoint
and ends, on CPU, with the same weights bit for bit as a run that was never killed:

* the batch of step N is ``batch_for_step(N)``, drawn from ``step_generator(seed, N)``,
  so no data-loader position needs saving; with ``loop.data_workers`` the next batches
  are made ahead in ``torch.utils.data`` worker processes, the same batches in order;
* the global generators (dropout) are saved with every checkpoint and restored just
  before the first resumed step, after everything else that might draw from them;
* optimiser and scheduler state travel in the checkpoint with the weights
  (:mod:`wavegen_core.training.resume` restores them all).

Evaluation runs under :func:`preserved_rng`, so the weights do not depend on how often
it runs either.

Under torchrun (:mod:`wavegen_core.parallel`) each rank trains on its share of every
step's batch, gradients are averaged across ranks after each phase's backward pass,
and only rank 0 evaluates and writes; every rank's random state is saved, so a killed
multi-process run resumes exactly too.

``loop.precision`` chooses the arithmetic of the forward passes
(:mod:`wavegen_core.training.precision`): fp32; bf16 under ``torch.autocast`` (the
default on a GPU that has it); or fp16 under autocast with a gradient scaler, CUDA only,
whose state travels in the checkpoint. Weights, optimiser state and evaluation stay
fp32. Under fp16 a step whose gradients overflow is skipped and the scale lowered, as
the scaler intends; a non-finite loss, or non-finite gradients in fp32 or bf16, still
stop the run.

A model trained by one objective has one optimiser. An adversarial one has one per
network (:class:`~wavegen_core.models.spec.Optimiser`, named), and each step runs a
phase per optimiser in order, as HiFi-GAN alternates a discriminator step and a
generator step: the phase's loss, its gradients clipped over its own parameters, its
update and its schedule. The phases of one step share a ``carry`` dict, so that what
one computes (the generated audio) the next can use.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from wavegen_core import parallel, threads
from wavegen_core.checkpoint import Optimisers, Schedulers, plain_config, save_checkpoint
from wavegen_core.errors import WavegenError
from wavegen_core.models.spec import Optimiser
from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.progress import log, progress_bar
from wavegen_core.seeding import capture_rng, preserved_rng
from wavegen_core.training.metrics import MetricsLog, write_loss_plot
from wavegen_core.training.precision import Precision, choose_precision
from wavegen_core.training.resume import resume, start_random_streams

Batch = TypeVar("Batch")
T = TypeVar("T")
Scalars = Mapping[str, float | torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, Scalars]]
# The loss of one phase of a step with several optimisers: (model, batch, carry).
PhaseLossFn = Callable[[nn.Module, Batch, dict[str, Any]], tuple[torch.Tensor, Scalars]]


class NonFiniteLossError(WavegenError):
    """The loss or its gradient became NaN or infinite; nothing of that state was saved."""

    def __init__(
        self, step: int, loss: float, grad_norm: float, checkpoint: Path, saved_step: int | None
    ) -> None:
        self.step = step
        self.loss = loss
        self.saved_step = saved_step
        if math.isfinite(loss):
            what = f"the gradient norm is {grad_norm} (loss {loss:.6g})"
        else:
            what = f"the loss is {loss}"
        kept = (
            f"the last good checkpoint, step {saved_step}, is kept at {checkpoint}"
            if saved_step is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"{what} at step {step}; training stopped without saving this state, and {kept}. "
            "The run is deterministic, so rerunning with the same params fails the same "
            "way: lower the learning rate or set grad_clip."
        )


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended: its final step and the latest value of every logged scalar."""

    step: int
    metrics: dict[str, float]


# The prefix of evaluation scalars: on held-out pieces, or, where a corpus is too small
# to hold any out, on training pieces, under a name that says so.
EVAL, EVAL_ON_TRAIN = "eval", "eval_on_train"


def held_out_or_train(held_out: Sequence[T], train: Sequence[T], what: str) -> tuple[list[T], str]:
    """``held_out`` and :data:`EVAL`; or, when it is empty, ``train`` and
    :data:`EVAL_ON_TRAIN`, with a warning: a score on training pieces is never written
    as a held-out one. ``what`` names the stage and split for the warning."""
    if held_out:
        return list(held_out), EVAL
    log.warning(
        "%s: no piece held out; evaluating on the training pieces, logged as %s/...",
        what,
        EVAL_ON_TRAIN,
    )
    return list(train), EVAL_ON_TRAIN


def fit(
    model: nn.Module,
    optimiser: torch.optim.Optimizer | Sequence[Optimiser],
    *,
    loss_fn: LossFn[Batch] | Mapping[str, PhaseLossFn[Batch]],
    batch_for_step: Callable[[int], Batch],
    loop: TrainLoopConfig,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    device: torch.device,
    evaluate: Callable[[nn.Module], Scalars] | None = None,
    scheduler: LRScheduler | None = None,
    on_step: Callable[[int], None] | None = None,
    eval_prefix: str = EVAL,
) -> TrainResult:
    """Train ``model`` for ``loop.steps`` steps, resuming from ``checkpoint_path`` if it is there.

    ``batch_for_step(step)`` must depend on ``step`` alone (tensors, or dicts, lists and
    tuples of them; they are moved to ``device``). ``loss_fn(model, batch)`` returns the
    loss and extra scalars to log as ``train/<name>``. ``evaluate(model)`` runs every
    ``loop.eval_every`` steps and at the end, in eval mode without gradients; its
    scalars are logged as ``<eval_prefix>/<name>`` (``eval/``, or ``eval_on_train/``
    where no piece was held out: see :func:`held_out_or_train`). ``config`` (JSON
    types) is stored in the checkpoint; a checkpoint written with another config, or
    past ``loop.steps``, is not resumed from but replaced, because it belongs to another
    run (:func:`~wavegen_core.training.resume.resume`). ``scheduler.step()`` is
    called once per training step. ``on_step(step)`` is called after each step is
    complete (checkpoint included).

    ``optimiser`` is one torch optimiser (with ``scheduler``), or the
    :class:`~wavegen_core.models.spec.Optimiser` list of the model's spec: one unnamed
    optimiser takes ``loss_fn`` as above; named ones take ``loss_fn`` as a mapping from
    each name to ``fn(model, batch, carry)`` and are stepped in the list's order (see
    the module docstring).

    A NaN or infinite loss or gradient norm raises :class:`NonFiniteLossError` before
    the update, leaving the last checkpoint on disk as it was.

    Seed the generators (``seed_everything``) before building the model. On return,
    ``model`` holds the final weights, and ``metrics_dir`` holds the curves, the
    summary ``metrics.json`` and ``loss_curves.png``.
    """
    checkpoint_path = Path(checkpoint_path)
    precision = choose_precision(loop.precision, device)
    config = plain_config(precision.run_config(config))
    phases = _phases(model, optimiser, scheduler, loss_fn)
    world = parallel.current()
    if loop.batch_size % world.size:
        raise WavegenError(
            f"train.batch_size = {loop.batch_size} does not split evenly over {world.size} "
            f"processes (train.nproc); make it a multiple of {world.size}"
        )
    optimisers, schedulers = _saved_form(phases)
    model.to(device)
    resumed = resume(
        checkpoint_path,
        config=config,
        steps=loop.steps,
        model=model,
        optimisers=optimisers,
        schedulers=schedulers,
        scaler=precision.scaler,
        device=device,
        world=world,
    )
    start = resumed.step if resumed is not None else 0
    saved_step = start if resumed is not None else None
    latest = resumed.metrics if resumed is not None else {}
    metrics = (
        MetricsLog(metrics_dir, after_step=start, latest=latest)
        if world.main
        else _Unlogged(latest)
    )
    if start < loop.steps:
        log.info(
            "training steps %d to %d on %s in %s", start + 1, loop.steps, device, precision.name
        )
    parallel.broadcast_state(model, world)
    model.train()
    # Last, so that nothing drawn while setting up shifts the training stream.
    start_random_streams(resumed, world)
    bar = progress_bar(
        total=loop.steps, initial=start, desc="train", unit="step", disable=not world.main
    )
    batches = _batches(batch_for_step, start, loop.steps, loop.data_workers, device)
    try:
        for step, whole in zip(range(start + 1, loop.steps + 1), batches, strict=True):
            threads.follow_share()  # the cores that stages running beside it left
            batch = move_to(parallel.shard(whole, world), device)
            try:
                scalars, total = _train_step(model, phases, batch, step, loop, precision, world)
            except _NonFinite as stop:
                raise NonFiniteLossError(
                    step, stop.loss, stop.grad_norm, checkpoint_path, saved_step
                ) from None
            bar.set_postfix(loss=f"{total:.4g}", refresh=False)
            bar.update(1)
            last = step == loop.steps
            if last or step % loop.log_every == 0:
                if len(phases) > 1:
                    scalars["train/loss"] = total
                metrics.log(step, scalars)
            if evaluate is not None and world.main and (last or step % loop.eval_every == 0):
                metrics.log(step, _evaluate(model, evaluate, eval_prefix))
            if last or step % loop.checkpoint_every == 0:
                # Every rank's generators, gathered by all (a collective), saved by rank 0.
                states = parallel.gather_objects(capture_rng(), world)
                if world.main:
                    save_checkpoint(
                        checkpoint_path,
                        model,
                        optimisers,
                        step=step,
                        config=config,
                        metrics=metrics.latest,
                        scheduler=schedulers,
                        scaler=precision.scaler,
                        rng_by_rank=states if world.size > 1 else None,
                    )
                    metrics.write_summary(step)
                saved_step = step
            if on_step is not None:
                on_step(step)
    finally:
        bar.close()
    if world.main:
        metrics.write_summary(loop.steps)
        write_loss_plot(metrics_dir)
        log.info("finished at step %d: %s", loop.steps, _format(metrics.latest))
    parallel.barrier(world)  # the others return once rank 0's files are written
    return TrainResult(loop.steps, dict(metrics.latest))


class _StepBatches(torch.utils.data.Dataset[Any]):
    """Item i is the batch of step ``first + i``: what a loader worker computes."""

    def __init__(self, batch_for_step: Callable[[int], Any], first: int, count: int) -> None:
        self.batch_for_step = batch_for_step
        self.first = first
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        return self.batch_for_step(self.first + index)


def _batches(
    batch_for_step: Callable[[int], Any],
    start: int,
    steps: int,
    workers: int,
    device: torch.device,
) -> Iterable[Any]:
    """The batches of steps ``start + 1 .. steps``, in order: made here, or ``workers``
    processes ahead (forked, so they share the pieces already loaded; two batches each
    in flight). The loader's own seed comes from a generator of its own, so that
    starting it draws nothing from the global generators the training stream uses."""
    if workers == 0 or start >= steps:
        return (batch_for_step(step) for step in range(start + 1, steps + 1))
    return torch.utils.data.DataLoader(
        _StepBatches(batch_for_step, start + 1, steps - start),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2,
        multiprocessing_context="fork",
        generator=torch.Generator().manual_seed(0),
        pin_memory=device.type == "cuda",
    )


class _Unlogged:
    """What ranks other than 0 have for a metrics log: the latest values, no files."""

    def __init__(self, latest: Mapping[str, float]) -> None:
        self.latest: dict[str, float] = dict(latest)

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        self.latest.update(scalars)

    def write_summary(self, step: int) -> None:
        pass


@dataclass(frozen=True)
class _Phase:
    """One optimiser's part of a training step: its loss and the parameters it clips."""

    optimiser: Optimiser
    loss_fn: PhaseLossFn[Any]
    parameters: list[nn.Parameter]


def _phases(
    model: nn.Module,
    optimiser: torch.optim.Optimizer | Sequence[Optimiser],
    scheduler: LRScheduler | None,
    loss_fn: LossFn[Any] | Mapping[str, PhaseLossFn[Any]],
) -> list[_Phase]:
    """One phase per optimiser, in order, each with its loss and the parameters it clips."""
    if isinstance(optimiser, torch.optim.Optimizer):
        optimiser = [Optimiser("", optimiser, scheduler)]
    elif scheduler is not None:
        raise ValueError("give schedules in the Optimiser list, not as scheduler=")
    if not optimiser:
        raise ValueError("no optimiser to train with")
    if len(optimiser) == 1 and not optimiser[0].name:
        if not callable(loss_fn):
            raise ValueError("one unnamed optimiser takes one loss_fn(model, batch)")
        single = cast(LossFn[Any], loss_fn)
        # Clipped over the model's parameters as a whole, which one optimiser holds.
        return [_Phase(optimiser[0], lambda m, b, _: single(m, b), list(model.parameters()))]
    names = [entry.name for entry in optimiser]
    if not all(names) or len(set(names)) != len(names):
        raise ValueError(f"several optimisers need distinct names, got {names}")
    if not isinstance(loss_fn, Mapping) or set(loss_fn) != set(names):
        raise ValueError(f"loss_fn must map each optimiser's name ({', '.join(names)}) to a loss")
    return [
        _Phase(
            entry,
            loss_fn[entry.name],
            [p for group in entry.torch_optimiser.param_groups for p in group["params"]],
        )
        for entry in optimiser
    ]


def _saved_form(phases: list[_Phase]) -> tuple[Optimisers, Schedulers]:
    """The optimisers and schedulers as checkpoints hold them: alone, or by name."""
    if len(phases) == 1 and not phases[0].optimiser.name:
        return phases[0].optimiser.torch_optimiser, phases[0].optimiser.scheduler
    return (
        {p.optimiser.name: p.optimiser.torch_optimiser for p in phases},
        {p.optimiser.name: p.optimiser.scheduler for p in phases},
    )


class _NonFinite(Exception):
    """A phase's loss or gradient norm is not finite: :func:`fit` stops the run."""

    def __init__(self, loss: float, grad_norm: float) -> None:
        super().__init__(loss, grad_norm)
        self.loss = loss
        self.grad_norm = grad_norm


def _train_step(
    model: nn.Module,
    phases: list[_Phase],
    batch: Any,
    step: int,
    loop: TrainLoopConfig,
    precision: Precision,
    world: parallel.World,
) -> tuple[dict[str, float], float]:
    """Run the phases of step ``step`` in order (those whose optimiser has joined), each
    updating its optimiser and schedule; returns the step's ``train/`` scalars and its
    total loss. A non-finite loss or gradient norm raises :class:`_NonFinite` before its
    phase's update; under fp16, overflowing gradients skip the update instead, as the
    scaler intends."""
    scaler = precision.scaler
    carry: dict[str, Any] = {}
    scalars: dict[str, float] = {}
    total = 0.0
    for phase in phases:
        if step < phase.optimiser.first_step:
            continue
        loss, grad_norm, extras = _backward(
            model, phase, batch, carry, loop.grad_clip, precision.autocast, scaler, world
        )
        overflow = scaler is not None and not math.isfinite(grad_norm)
        if not math.isfinite(loss) or not (math.isfinite(grad_norm) or overflow):
            raise _NonFinite(loss, grad_norm)
        if scaler is not None:
            scaler.step(phase.optimiser.torch_optimiser)  # skipped on overflow
        else:
            phase.optimiser.torch_optimiser.step()
        if phase.optimiser.scheduler is not None:
            phase.optimiser.scheduler.step()
        scalars.update(_train_scalars(phase, loss, grad_norm, extras))
        total += loss
    if scaler is not None:
        scaler.update()
        scalars["train/loss_scale"] = float(scaler.get_scale())
    return scalars, total


def _backward(
    model: nn.Module,
    phase: _Phase,
    batch: Any,
    carry: dict[str, Any],
    grad_clip: float | None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    world: parallel.World = parallel.ALONE,
) -> tuple[float, float, Scalars]:
    """Compute one phase's loss and clipped gradients; returns the loss, gradient norm
    and extras.

    Loss and norm come back to the host together (one device sync per phase), so that
    the caller can check them before the update ever touches the weights. With
    ``grad_clip`` unset the norm is still computed, since it is logged and checked:
    clipping at infinity scales the gradients by exactly 1. With a ``scaler`` the
    gradients are unscaled before they are clipped and measured. With several ranks the
    gradients are averaged first (still scaled, so that an overflow on any rank is seen
    by all), and the loss and extras returned are the ranks' mean.
    """
    phase.optimiser.torch_optimiser.zero_grad(set_to_none=True)
    with autocast():
        loss, extras = phase.loss_fn(model, batch, carry)
    if scaler is not None:
        scaler.scale(loss).backward()
        parallel.average_gradients(phase.parameters, world)
        scaler.unscale_(phase.optimiser.torch_optimiser)
    else:
        loss.backward()
        parallel.average_gradients(phase.parameters, world)
    grad_norm = nn.utils.clip_grad_norm_(phase.parameters, grad_clip or math.inf)
    both = torch.stack([loss.detach().float().reshape(()), grad_norm.float()])
    if world.size > 1:
        both = parallel.mean_over_ranks(both, world)
        extras = parallel.mean_scalars(extras, world, both.device)
    loss_value, norm_value = both.tolist()
    return loss_value, norm_value, extras


def _train_scalars(
    phase: _Phase, loss: float, grad_norm: float, extras: Scalars
) -> dict[str, float]:
    """``train/loss``, the extras, ``grad_norm`` and ``lr``; a named phase's own three
    carry its name (``train/<name>_loss`` ...)."""
    prefix = f"{phase.optimiser.name}_" if phase.optimiser.name else ""
    lr = float(phase.optimiser.torch_optimiser.param_groups[0]["lr"])
    scalars = {f"{prefix}loss": loss, **{name: float(value) for name, value in extras.items()}}
    scalars[f"{prefix}grad_norm"] = grad_norm
    scalars[f"{prefix}lr"] = lr
    return {f"train/{name}": value for name, value in scalars.items()}


def _evaluate(
    model: nn.Module, evaluate: Callable[[nn.Module], Scalars], prefix: str = "eval"
) -> dict[str, float]:
    """Run ``evaluate`` in eval mode without gradients, leaving the training RNG untouched."""
    model.eval()
    try:
        with preserved_rng(), torch.no_grad():
            results = evaluate(model)
    finally:
        model.train()
    scalars = {f"{prefix}/{name}": float(value) for name, value in results.items()}
    log.info("eval: %s", _format(scalars))
    return scalars


def move_to(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (also inside dicts, lists, tuples) on ``device``."""
    return parallel.map_tensors(batch, lambda tensor: tensor.to(device))


def _format(scalars: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in scalars.items())
