"""What a profile costs, measured on this machine, and what it would take on a GPU node.

    python -m benchmarks.scale                       # the full profile, on the CPU
    python -m benchmarks.scale --profile tiny --seconds 0.05 --out scale.json
    python -m benchmarks.scale --figures scale.json --dispatch-us 1   # another node model

For every training stage, its own training function runs on the synthetic material of
:mod:`benchmarks._material` at the profile's sizes with a batch of one example, and one
step (the second, after the first has built what it builds) runs under two counters:

* ``torch.utils.flop_counter.FlopCounterMode``: the floating-point operations of the
  step's forward and backward passes (matrix products and convolutions; the
  element-wise work and the optimiser are left out, so this is a floor);
* a dispatch counter: the tensor operations the step issues, views left out. On a
  GPU each is at least one kernel launched from Python, which bounds how fast small
  models can step however fast the GPU is.

Two more steps are timed without the counters (the CPU figure), the parameters are
counted at the optimiser (the bytes a data-parallel step all-reduces), and three of the
stage's batches are then made alone and timed: what its loader workers spend per
example. Each
generation of :func:`benchmarks._material.generators` is counted and timed the same
way, per second of audio made; the WaveNets are counted on the engine they run on a
GPU (fused matrix products) and timed on the CPU's (the numba loop).

The estimate for a node of ``--gpus`` GPUs is a model, not a measurement, and its
constants are flags: a step takes the longer of its share of the FLOPs at
``--utilisation`` of ``--peak-tflops`` and its operations at ``--dispatch-us`` each
(each rank issues every operation, whatever its share of the batch) and its share of
the batches made by its ``data_workers`` at this CPU's speed, plus a ring all-reduce
of the fp32 gradients at ``--allreduce-gbps``. Generation is autoregressive
or chunked, not data-parallel: a second of audio costs the longer of its FLOPs on one
GPU and its operations.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._material import Trainer, generators, trainers
from wavegen_core.models.vocoders.wavenet import generation as wavenet_generation
from wavegen_core.params import Params
from wavegen_core.profiles import params_under_profile
from wavegen_core.training import loop as training_loop

# Step 1 builds lazily; step 2 is counted; steps 3 .. 2 + TIMED are timed.
COUNTED_STEP = 2
# Batches made alone, after the steps, to time the data side.
DATA_STEPS = 3


class OperationCounter(TorchDispatchMode):
    """Counts the tensor operations dispatched while active, views left out."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if not getattr(func, "is_view", False):
            self.operations += 1
        return func(*args, **(kwargs or {}))


class _Measured(Exception):
    """Raised from the step callback once the figures are in: the rest of the run
    (more steps, evaluation, the checkpoint) is not needed."""


def _batch_of_one(params: Params) -> Params:
    """``params`` with every training section's batch size set to 1."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "batch_size" in node and "steps" in node:
                node["batch_size"] = 1
            for value in node.values():
                walk(value)

    raw = params.model_dump(mode="json")
    walk(raw)
    return Params.model_validate(raw)


def _count(call: Any) -> tuple[Any, float, int]:
    flops, operations = FlopCounterMode(display=False), OperationCounter()
    with flops, operations:
        result = call()
    return result, float(flops.get_total_flops()), operations.operations


def training_figures(
    params: Params, timed: int, only: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per training stage (those in ``only``, or all): FLOPs and operations of one step
    of one example, its parameters, and the CPU's seconds per step of one example."""
    one = _batch_of_one(params)
    rows = []
    for name, trainer in trainers(one).items():
        if not only or name in only:
            rows.append({"stage": name, **_training_row(trainer, one, timed)})
            print(f"{name}: counted", file=sys.stderr, flush=True)
    return rows


def _training_row(trainer: Trainer, params: Params, timed: int) -> dict[str, Any]:
    state: dict[str, Any] = {"parameters": 0, "optimisers": set()}
    stack = ExitStack()
    flops, operations = FlopCounterMode(display=False), OperationCounter()

    def count_parameters(optimiser: torch.optim.Optimizer, *_: Any) -> None:
        if id(optimiser) not in state["optimisers"]:
            state["optimisers"].add(id(optimiser))
            state["parameters"] += sum(
                p.numel() for group in optimiser.param_groups for p in group["params"]
            )

    def on_step(step: int) -> None:
        if step == COUNTED_STEP - 1:
            stack.enter_context(flops)
            stack.enter_context(operations)
        elif step == COUNTED_STEP:
            stack.close()
            state["start"] = time.perf_counter()
        elif step == COUNTED_STEP + timed:
            state["seconds"] = (time.perf_counter() - state["start"]) / timed
            raise _Measured

    def batches(batch_for_step: Callable[[int], Any], *args: Any) -> Any:
        state["batch_for_step"] = batch_for_step
        return make_batches(batch_for_step, *args)

    hook = register_optimizer_step_pre_hook(count_parameters)
    make_batches = training_loop._batches
    try:
        with (
            tempfile.TemporaryDirectory() as work,
            mock.patch.object(training_loop, "_batches", batches),
        ):
            steps = COUNTED_STEP + timed + 1
            trainer(params, torch.device("cpu"), "fp32", steps, Path(work), on_step)
    except _Measured:
        pass
    finally:
        hook.remove()
        stack.close()
    # The batches, made alone: what the loader's workers spend per example.
    start = time.perf_counter()
    for step in range(DATA_STEPS):
        state["batch_for_step"](1000 + step)
    return {
        "flops_per_example": float(flops.get_total_flops()),
        "operations_per_step": operations.operations,
        "parameters": int(state["parameters"]),
        "cpu_seconds_per_example": float(state["seconds"]),
        "data_seconds_per_example": (time.perf_counter() - start) / DATA_STEPS,
    }


def generation_figures(params: Params, seconds: float) -> list[dict[str, Any]]:
    """Per generation: FLOPs, operations and CPU seconds per second of audio made."""
    rate = params.audio.sample_rate
    rows = []
    for name, generate in generators(params, torch.device("cpu"), seconds).items():
        generate()  # built and warmed; the counted and timed runs follow
        # Counted on the WaveNets' engine for a GPU (fused matrix products): the numba
        # loop that a CPU takes is invisible to the counters. Timed on the CPU's own.
        with mock.patch.object(wavenet_generation, "compiled_block_loop", lambda: None):
            samples, flops, operations = _count(generate)
        start = time.perf_counter()
        generate()
        elapsed = time.perf_counter() - start
        audio_seconds = samples / rate
        rows.append(
            {
                "generation": name,
                "flops_per_audio_second": flops / audio_seconds,
                "operations_per_audio_second": operations / audio_seconds,
                "cpu_seconds_per_audio_second": elapsed / audio_seconds,
            }
        )
        print(f"{name}: counted", file=sys.stderr, flush=True)
    return rows


def training_estimate(
    row: dict[str, Any], section: Any, gpus: int, model: argparse.Namespace
) -> dict[str, float]:
    """Seconds per step and hours for the section's steps on ``gpus`` GPUs."""
    share = -(-section.train.batch_size // gpus)  # the largest rank's examples
    compute = share * row["flops_per_example"] / (model.peak_tflops * 1e12 * model.utilisation)
    dispatch = row["operations_per_step"] * model.dispatch_us * 1e-6
    gradient_bytes = 4 * row["parameters"]
    allreduce = 2 * (gpus - 1) / gpus * gradient_bytes / (model.allreduce_gbps * 1e9)
    # The rank's examples made by its loader workers, side by side, while it steps; with
    # none, made in the step.
    workers = section.train.data_workers
    data = share * row.get("data_seconds_per_example", 0.0) / max(workers, 1)
    bounds = {"FLOPs": compute, "launches": dispatch, "data": data}
    step = (max(bounds.values()) if workers else max(compute, dispatch) + data) + allreduce
    return {
        "compute_s": compute,
        "dispatch_s": dispatch,
        "data_s": data,
        "allreduce_s": allreduce,
        "step_s": step,
        "hours": step * section.train.steps / 3600,
        "bound": max(bounds, key=lambda name: bounds[name]),
    }


def sections(params: Params) -> dict[str, Any]:
    """Each training stage's section of ``params`` (its ``train`` loop and sizes)."""
    found: dict[str, Any] = {
        "train_transcriber": params.transcription,
        "train_music_transformer": params.music_transformer,
        "train_prior": params.vqvae.prior,
    }
    found |= {f"train_vocoder@{f}": params.vocoder.section(f) for f in params.vocoder.families}
    found |= {f"train_vqvae@{k}": params.vqvae.tier(int(k)) for k in params.vqvae.tiers}
    return found


def chains(stages: list[str]) -> list[list[str]]:
    """The training stages that must run one after another (each needs the one before's
    output): the transcriber then the Music Transformer (it learns from transcriptions),
    the tiers then the prior; every other stage alone."""
    tiers = sorted((s for s in stages if s.startswith("train_vqvae@")), key=lambda s: int(s[12:]))
    linked: list[list[str]] = [
        [s for s in ("train_transcriber", "train_music_transformer") if s in stages],
        tiers + [s for s in ("train_prior",) if s in stages],
    ]
    alone = [[s] for s in stages if not any(s in chain for chain in linked)]
    return [chain for chain in linked if chain] + alone


def schedules(training: list[dict[str, Any]], gpus: int) -> list[str]:
    """The two ways to use a node: each stage on all its GPUs, one after another (the
    `node` deployment), or one stage per GPU, side by side (the `gpu` deployment), whose
    time is at least the longest chain and at least the total over the GPUs."""
    hours = {row["stage"]: row["estimate"] for row in training}
    on_all = sum(h[str(gpus)]["hours"] for h in hours.values())
    one_each = {s: h["1"]["hours"] for s, h in hours.items()}
    longest = max(chains(list(hours)), key=lambda chain: sum(one_each[s] for s in chain))
    chain_hours = sum(one_each[s] for s in longest)
    spread = sum(one_each.values()) / gpus
    return [
        f"- every stage on all {gpus} GPUs, one after another: {on_all:,.1f} h",
        f"- one stage per GPU, side by side: at least {max(chain_hours, spread):,.1f} h "
        f"(the longest chain, {' then '.join(longest)}: {chain_hours:,.1f} h; "
        f"all stages' single-GPU hours over {gpus} GPUs: {spread:,.1f} h)",
    ]


def report(
    params: Params, training: list[dict[str, Any]], generation: list[dict[str, Any]],
    model: argparse.Namespace,
) -> str:  # fmt: skip
    by_stage = sections(params)
    lines = [
        f"Node model: {model.gpus} GPUs, {model.peak_tflops:g} TFLOP/s peak at "
        f"{model.utilisation:.0%}, {model.dispatch_us:g} µs per operation, "
        f"all-reduce at {model.allreduce_gbps:g} GB/s, each rank's batches made by "
        "its `data_workers` at this CPU's speed.",
        "",
        "| stage | steps | batch | GFLOP per example-step | operations per step "
        "| parameters (M) | CPU s per example-step | CPU ms per example made | 1 GPU (h) | "
        f"{model.gpus} GPUs (h) | bound on {model.gpus} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    total, total_one = 0.0, 0.0
    for row in training:
        section = by_stage[row["stage"]]
        one = training_estimate(row, section, 1, model)
        many = training_estimate(row, section, model.gpus, model)
        total += many["hours"]
        total_one += one["hours"]
        row["estimate"] = {"1": one, str(model.gpus): many}
        lines.append(
            f"| {row['stage']} | {section.train.steps:,} | {section.train.batch_size} "
            f"| {row['flops_per_example'] / 1e9:,.1f} | {row['operations_per_step']:,} "
            f"| {row['parameters'] / 1e6:.1f} | {row['cpu_seconds_per_example']:.2f} "
            f"| {row['data_seconds_per_example'] * 1000:.2f} "
            f"| {one['hours']:,.1f} | {many['hours']:,.1f} | {many['bound']} |"
        )
    lines += [
        f"| all training, one stage after another | | | | | | | | {total_one:,.1f} "
        f"| {total:,.1f} | |",
        "",
        *schedules(training, model.gpus),
        "",
        "| generation | GFLOP per audio second | operations per audio second "
        "| CPU s per audio second | 1 GPU s per audio second | bound |",
        "|---|---|---|---|---|---|",
    ]
    for row in generation:
        compute = row["flops_per_audio_second"] / (model.peak_tflops * 1e12 * model.utilisation)
        dispatch = row["operations_per_audio_second"] * model.dispatch_us * 1e-6
        row["gpu_seconds_per_audio_second"] = max(compute, dispatch)
        lines.append(
            f"| {row['generation']} | {row['flops_per_audio_second'] / 1e9:,.1f} "
            f"| {row['operations_per_audio_second']:,.0f} "
            f"| {row['cpu_seconds_per_audio_second']:,.2f} "
            f"| {max(compute, dispatch):,.3f} | {'FLOPs' if compute >= dispatch else 'launches'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full")
    parser.add_argument("--timed", type=int, default=2, help="steps timed on the CPU")
    parser.add_argument("--seconds", type=float, default=0.1, help="audio per generation")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0,
        help="dense bf16 tensor-core peak of one GPU (H100/H200 SXM: 989)",
    )  # fmt: skip
    parser.add_argument("--utilisation", type=float, default=0.3)
    parser.add_argument("--dispatch-us", type=float, default=10.0)
    parser.add_argument("--allreduce-gbps", type=float, default=300.0)
    parser.add_argument("--only", nargs="*", help="training stages to count (default: all)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument(
        "--figures", type=Path,
        help="a JSON file --out wrote: its figures under this run's node model, not measured again",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.figures is not None:
        saved = json.loads(args.figures.read_text())
        profile = saved["profile"]
        params = params_under_profile(profile)
        training, generation = saved["training"], saved["generation"]
        print(f"\n{profile} profile, figures from {args.figures}\n")
    else:
        profile = args.profile
        params = params_under_profile(profile)
        torch.manual_seed(0)
        training = training_figures(params, args.timed, args.only)
        generation = generation_figures(params, args.seconds)
        print(f"\n{profile} profile, counted and timed on the CPU (torch {torch.__version__})\n")
    print(report(params, training, generation, args))
    if args.out is not None:
        figures = {"profile": profile, "training": training, "generation": generation}
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
