"""The GPU check: every trained model at a profile's size, a few dozen steps in fp32 and
in bf16, then generation by each vocoder family and by the hierarchy.

    python -m tools.gpu_check                       # CUDA, the full profile
    python -m tools.gpu_check --device cpu --profile tiny --steps 3 --seconds 0.25

Each training row runs the stage's own training function (``train_transcriber``,
``train_music_transformer``, ``train_vocoder`` per family, ``train_tier`` per tier,
``train_prior``) through the shared loop, with ``train.precision`` set, on the synthetic
material of :mod:`benchmarks._material` (random notes, their sine renders, random
codes): speed and memory depend on the shapes, not on the music. It prints steps/s (after the first
two steps), samples/s (audio samples, or events and codes, the steps consumed) and the
peak GPU memory, as a table, and writes the rows as JSON with ``--out``.

Any error, a CUDA one above all, stops the check with its traceback and exit code 1
after the table of what ran; the CUDA context is synchronised after every row, so an
asynchronous error is reported against the row that caused it. On CPU the same code
runs at tiny sizes as a smoke test in the suite (``tests/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from benchmarks._material import Trainer, generators, trainers
from wavegen_core.params import Params
from wavegen_core.profiles import params_under_profile


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def training_row(
    name: str, trainer: Trainer, params: Params, device: torch.device, precision: str, steps: int
) -> dict[str, Any]:
    times: list[float] = []

    def on_step(step: int) -> None:
        _synchronise(device)
        times.append(time.perf_counter())

    _reset_peak(device)
    with tempfile.TemporaryDirectory() as work:
        per_step = trainer(params, device, precision, steps, Path(work), on_step)
    _synchronise(device)
    timed = times[2:] if len(times) > 3 else times
    rate = (len(timed) - 1) / (timed[-1] - timed[0]) if len(timed) > 1 else float("nan")
    return {
        "row": name,
        "precision": precision,
        "steps": steps,
        "steps_per_s": rate,
        "samples_per_s": rate * per_step,
        "peak_mib": _peak_mib(device),
    }


def generation_rows(params: Params, device: torch.device, seconds: float) -> list[dict[str, Any]]:
    """:func:`generators`' calls, each timed."""
    rows = []
    for name, generate in generators(params, device, seconds).items():
        _reset_peak(device)
        start = time.perf_counter()
        samples = generate()
        _synchronise(device)
        rows.append(_generated(name, samples, time.perf_counter() - start, device))
    return rows


def _generated(name: str, samples: int, elapsed: float, device: torch.device) -> dict[str, Any]:
    return {
        "row": name,
        "precision": "fp32",
        "steps": None,
        "steps_per_s": None,
        "samples_per_s": samples / elapsed,
        "peak_mib": _peak_mib(device),
    }


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_table(rows: list[dict[str, Any]], device: torch.device, profile: str) -> None:
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{profile} profile on {what} (torch {torch.__version__})\n")
    print("| row | precision | steps/s | samples/s | peak GPU memory (MiB) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['row']} | {row['precision']} | {_cell(row['steps_per_s'], 2)} "
            f"| {_cell(row['samples_per_s'], 0)} | {_cell(row['peak_mib'], 0)} |"
        )


def run(
    device: torch.device, profile: str, steps: int, seconds: float, precisions: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows that ran, and the failures (with tracebacks) of those that did not."""
    params = params_under_profile(profile)
    rows, failures = [], []
    for name, trainer in trainers(params).items():
        for precision in precisions:
            try:
                rows.append(training_row(name, trainer, params, device, precision, steps))
            except Exception:  # every failure is reported; the check then exits 1
                failures.append(f"{name} ({precision}):\n{traceback.format_exc()}")
            print(f"{name} {precision}: done", file=sys.stderr, flush=True)
    try:
        rows += generation_rows(params, device, seconds)
    except Exception:
        failures.append(f"generation:\n{traceback.format_exc()}")
    return rows, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--profile", default="full" if cuda else "tiny")
    parser.add_argument("--steps", type=int, default=24, help="training steps per row")
    parser.add_argument("--seconds", type=float, default=2.0, help="audio generated per row")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    started = time.perf_counter()
    rows, failures = run(device, args.profile, args.steps, args.seconds, args.precisions)
    print_table(rows, device, args.profile)
    print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s")
    if args.out is not None:
        args.out.write_text(json.dumps({"device": str(device), "rows": rows}, indent=2))
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
