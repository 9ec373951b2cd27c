"""Data-parallel training: processes started by torchrun, one share of each batch apiece.

A training stage asked for ``train.nproc`` > 1 starts itself again under ``torchrun``
(:func:`relaunch`), so its ``cmd`` in ``dvc.yaml`` stays one command. Each process
then joins the group (:func:`join`: NCCL between GPUs, gloo on CPU) and :func:`fit
<wavegen_core.training.loop.fit>` does the rest:

* every rank draws step N's whole batch, ``batch_for_step(N)``, exactly as one process
  would, and keeps its own contiguous share of the rows (:func:`shard`), so that a
  step's global batch is still a function of (seed, N) whatever the process count,
  and a killed run resumes exactly;
* after each phase's backward pass the gradients of that phase's parameters are
  averaged across ranks (:func:`average_gradients`, one flattened all-reduce), so every
  rank applies the same update: with equal shares, the gradient of the global batch's
  mean loss. That is the reduction DistributedDataParallel performs; it is done here by
  hand because the GAN's two phases, and models whose loss calls several of their
  methods, do not go through one ``forward`` that DDP could hook;
* only rank 0 evaluates and writes checkpoints, metrics and plots; every rank's random
  state travels in the checkpoint.

Batch normalisation sees only its rank's rows unless the model synchronises it
(:class:`SyncBatchNorm` below, which the transcriber uses); dropout draws from each
rank's own generator, so a multi-process run with dropout is an equally valid run,
not the single-process run's twin.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from wavegen_core.errors import WavegenError
from wavegen_core.progress import log

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies
# Set by torchrun in every process it starts.
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes (rank 0 of 1 alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


ALONE = World()


def current() -> World:
    """The group this process has joined, or a world of one."""
    if not (dist.is_available() and dist.is_initialized()):
        return ALONE
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def under_torchrun() -> bool:
    return all(name in os.environ for name in RANK_VARIABLES)


def process_count(requested: int | str, device: torch.device, batch_size: int) -> int:
    """``train.nproc``: a number, or ``auto``: one process per visible GPU on CUDA (else
    1), or the most GPUs that split ``batch_size`` evenly, with a note of the ones left
    idle."""
    if requested != "auto":
        return int(requested)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 1
    count = max(gpus, 1)
    while batch_size % count:
        count -= 1
    if count < gpus:
        log.warning(
            "nproc auto: batch size %d does not split over %d GPUs; using %d of them",
            batch_size,
            gpus,
            count,
        )
    return count


def relaunch(module: str, argv: Sequence[str], nproc: int, key: str) -> int:
    """Run ``python -m module argv`` as ``nproc`` processes under torchrun; the exit code:
    0, or the first failed process's (1 if a signal ended it).

    torchrun's agent runs in this process (``torch.distributed.run``, what the
    ``torchrun`` command runs), which has imported torch already: a second interpreter
    would import it again only to wait. ``--standalone`` gives the processes a
    rendezvous of their own on this machine, so two stages launched at once do not
    meet. ``key`` (the params key that asked) is logged.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    arguments = ["--standalone", f"--nproc-per-node={nproc}", "-m", module, *argv]
    log.info("%s = %d: starting %d processes with torchrun", key, nproc, nproc)
    try:
        torchrun.run(torchrun.parse_args(arguments))
    except ChildFailedError as failed:
        log.error("%s", failed.format_msg())
        codes = [failure.exitcode for failure in failed.failures.values()]
        return next((code for code in codes if code > 0), 1)
    return 0


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join torchrun's group (once) and return it with this rank's device: its own GPU
    (``cuda:LOCAL_RANK``) on CUDA, the CPU otherwise."""
    if not under_torchrun():
        return World(), device
    _die_with_parent()
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(leave)
    world = current()
    log.info("rank %d of %d on %s", world.rank, world.size, device)
    return world, device


def _die_with_parent() -> None:
    """Have the kernel kill this rank when torchrun's agent dies.

    torchrun starts each rank in a session of its own, so a ``kill -9`` of the stage's
    process group (a lost worker, DVC or a person stopping the stage) would leave the
    ranks training on, and writing, beside the rerun. Linux only; elsewhere the agent's
    own signal handling is all there is.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getppid()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the agent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_divisible(batch_size: int, world: World, key: str) -> None:
    if batch_size % world.size:
        raise WavegenError(
            f"{key}.batch_size = {batch_size} does not split evenly over {world.size} "
            f"processes ({key}.nproc); make it a multiple of {world.size}"
        )


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``batch`` with ``fn`` applied to every tensor in it, also inside dicts, lists,
    tuples and named tuples; anything else is kept as it is."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {key: map_tensors(value, fn) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        parts = [map_tensors(item, fn) for item in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else type(batch)(parts)
    return batch


def shard(batch: Any, world: World) -> Any:
    """This rank's contiguous share of the rows of every tensor in ``batch``."""
    if world.size == 1:
        return batch

    def rows(tensor: torch.Tensor) -> torch.Tensor:
        share = tensor.shape[0] // world.size
        return tensor[world.rank * share : (world.rank + 1) * share]

    return map_tensors(batch, rows)


def average_gradients(parameters: Iterable[nn.Parameter], world: World) -> None:
    """Replace each gradient by its mean over the ranks: one all-reduce of them all."""
    if world.size == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """``values`` averaged over the ranks (a copy; unchanged in a world of one)."""
    if world.size == 1:
        return values
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / world.size


def mean_scalars(
    scalars: Mapping[str, float | torch.Tensor], world: World, device: torch.device
) -> dict[str, float]:
    """Each named scalar averaged over the ranks (one all-reduce, in float64)."""
    names = list(scalars)
    if not names:
        return {}
    values = torch.tensor(
        [float(scalars[name]) for name in names], dtype=torch.float64, device=device
    )
    return dict(zip(names, mean_over_ranks(values, world).tolist(), strict=True))


def sum_over_ranks_(tensors: Sequence[torch.Tensor], world: World) -> None:
    """Each tensor replaced, in place, by its sum over the ranks."""
    if world.size == 1:
        return
    for tensor in tensors:
        dist.all_reduce(tensor)


def broadcast_(tensors: Sequence[torch.Tensor], world: World) -> None:
    """Rank 0's values of ``tensors`` on every rank, in place."""
    if world.size == 1:
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def broadcast_state(model: nn.Module, world: World) -> None:
    """Rank 0's parameters and buffers on every rank."""
    if world.size == 1:
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def gather_objects(value: Any, world: World) -> list[Any]:
    """``value`` of every rank, in rank order (on every rank)."""
    if world.size == 1:
        return [value]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, value)
    return gathered


def global_denominator(count: torch.Tensor, minimum: float = 1.0) -> torch.Tensor:
    """The divisor that makes a rank's "sum over some elements / their number" average,
    over the ranks, to the global batch's: the global number (at least ``minimum``)
    over the rank count. Only while gradients are recorded (training); evaluation,
    which rank 0 runs alone, gets ``count`` itself."""
    world = current()
    if world.size == 1 or not torch.is_grad_enabled():
        return count.clamp(min=minimum)
    total = count.detach().to(torch.float64)
    dist.all_reduce(total)
    return total.clamp(min=minimum) / world.size


class _AllReduceSum(torch.autograd.Function):
    """A sum over the ranks whose gradient is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(nn.BatchNorm2d):
    """Batch normalisation over the whole global batch, on CPU (gloo) as on GPU.

    In training, with more than one rank, the per-channel sums and sums of squares are
    all-reduced (differentiably) before the statistics are formed, so every rank
    normalises by the statistics one process would compute over the global batch and
    the running averages agree. Otherwise it is ``nn.BatchNorm2d``. (torch's own
    ``SyncBatchNorm`` runs on GPUs only.)
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        world = current()
        if not self.training or world.size == 1:
            return super().forward(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        count = torch.tensor([input.numel() / channels], dtype=input.dtype, device=input.device)
        local = torch.cat([input.sum(dims), (input * input).sum(dims), count])
        total = _AllReduceSum.apply(local)
        n = total[-1]
        mean = total[:channels] / n
        var = total[channels : 2 * channels] / n - mean * mean
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)  # a cumulative average
                )
                self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                unbiased = var.detach() * n / (n - 1)
                self.running_var.mul_(1 - momentum).add_(unbiased * momentum)
        shape = [1, channels] + [1] * (input.dim() - 2)
        normalised = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            normalised = normalised * self.weight.view(shape) + self.bias.view(shape)
        return normalised
