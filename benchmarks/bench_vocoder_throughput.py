"""Training throughput of the likelihood families at a profile's size, and what each
lever buys: audio samples a second of training, and the steps that 30 minutes buy.

``python -m benchmarks.bench_vocoder_throughput [--profile cpu] [--steps 6]
[--out FILE]``

For the WaveNet and the flow, built as ``train_vocoder`` builds them at the profile's
size, one training step (forward, backward, Adam) on random audio and a random sparse
roll of the profile's batch and excerpt length is timed over ``--steps`` steps after
two untimed ones, for each row:

* ``profile``: as the profile trains it (the row the others are compared with);
* ``excerpt = 2 x RF`` and ``excerpt = RF``: shorter excerpts, matched to the receptive
  field (the WaveNet's past; the flow's couplings' reach), the batch unchanged;
* ``logistic mixture`` (WaveNet): 30 output channels and a one-channel input for the
  256-way softmax and one-hot input;
* ``mel`` : conditioned on 80 log-mel bands (``train_vocoder_mel``) instead of the
  roll's 353 channels, the mel computed from the batch as training does;
* ``no excitation``: the roll without the harmonic excitation (which the mel models go
  without);
* ``compiled``: the step's loss under ``torch.compile`` (inductor, on the CPU), with
  its compile time apart.

Also the share of a step spent in the conditioning network (the roll's encoder and
upsampler, run once per excerpt; each layer's 1x1 projection of it is counted with
the layer): one forward and backward of the conditioning alone against the whole.

Prints a table and writes it as JSON to ``--out`` (default
``benchmarks/results/vocoder_throughput.json``). Time it alone: another process on
the 2 cores distorts every row.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.registry import vocoder_spec
from wavegen_core.params import Params
from wavegen_core.profiles import params_under_profile

HALF_HOUR = 30 * 60
RESULTS = Path(__file__).parent / "results" / "vocoder_throughput.json"


def _batch(
    params: Params, family: str, frames: int, history: int, mel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    section = params.vocoder.section(family)
    batch = section.train.batch_size
    hop = params.vocoder.conditioning.hop_length
    audio = 0.1 * torch.randn(batch, frames * hop, generator=generator)
    roll = (torch.rand(batch, ROLL_CHANNELS, history + frames, generator=generator) > 0.97).float()
    return audio, roll


def _build(params: Params, family: str, **change: Any) -> tuple[torch.nn.Module, bool]:
    """The family's model at the profile's size with ``change`` applied: section fields,
    ``excitation`` (the conditioning's) or ``mel`` (True for the mel-conditioned model)."""
    torch.manual_seed(0)
    vocoder = params.vocoder
    mel = bool(change.pop("mel", False))
    conditioning = vocoder.mel_conditioning() if mel else vocoder.conditioning
    if "excitation" in change:
        conditioning = conditioning.model_copy(update={"excitation": change.pop("excitation")})
    section = vocoder.section(family).model_copy(update=change)
    spec = vocoder_spec(family)
    saved = spec.checkpoint_config(
        section,
        conditioning,
        params.audio.sample_rate,
        params.seed,
        mel=vocoder.mel.frames() if mel else None,
    )
    return spec.build(saved).train(), mel


def time_steps(
    model: torch.nn.Module,
    step_loss: Callable[[], torch.Tensor],
    steps: int,
) -> tuple[float, float]:
    """Seconds per step over ``steps`` timed steps, after two untimed ones; and the first
    untimed step's time (what a compiled step's compilation costs)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)

    def one() -> None:
        loss = step_loss()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    started = time.perf_counter()
    one()
    first = time.perf_counter() - started
    one()
    started = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - started) / steps, first


def receptive_field(family: str, model: torch.nn.Module) -> int:
    if family == "wavenet":
        return int(model.receptive_field)  # type: ignore[arg-type]
    couplings = model.couplings  # type: ignore[union-attr]
    reach = sum(coupling.stack.receptive_field - 1 for coupling in couplings)
    return int(reach * model.groups) + 1  # type: ignore[operator]


def family_rows(params: Params, family: str, steps: int) -> list[dict[str, Any]]:
    section = params.vocoder.section(family)
    hop = params.vocoder.conditioning.hop_length
    base_model, _ = _build(params, family)
    rf = receptive_field(family, base_model)
    rows: list[dict[str, Any]] = []
    variants: list[tuple[str, dict[str, Any]]] = [("profile", {})]
    for label, samples in (("excerpt = 2 x RF", 2 * rf), ("excerpt = RF", rf)):
        frames = max(1, math.ceil(samples / hop))
        if frames < section.segment_frames:
            variants.append((label, {"segment_frames": frames}))
    if family == "wavenet":
        variants.append(("logistic mixture", {"output": "logistic_mixture"}))
    variants += [("mel", {"mel": True}), ("no excitation", {"excitation": "none"})]
    # Inductor cannot compile the excitation's integer noise hash (its constants overflow
    # int64 in the generated C++): the compiled step is the one without it.
    variants.append(("compiled, no excitation", {"excitation": "none", "compiled": True}))
    for label, change in variants:
        compiled = bool(change.pop("compiled", False))
        model, mel = _build(params, family, **change)
        frames = change.get("segment_frames", section.segment_frames)
        history = model.history_frames  # type: ignore[operator]
        audio, roll = _batch(params, family, frames, history, mel)
        if mel:
            roll = model.conditioning.mel_frames.attach(roll, audio)  # type: ignore[union-attr]
        loss_of = model.loss  # type: ignore[operator]
        if compiled:
            loss_of = torch.compile(loss_of)
        try:
            seconds, first = time_steps(model, lambda f=loss_of, a=audio, r=roll: f(a, r)[0], steps)
        except Exception as error:  # a compiler that fails is a row, not the end
            reason = str(error).strip().splitlines()[-1][:200]
            rows.append({"family": family, "row": label, "failed": reason})
            print(f"{family:8s} {label:18s} failed: {reason}", flush=True)
            continue
        samples = audio.numel()
        row = {
            "family": family,
            "row": label,
            "segment_frames": frames,
            "batch_samples": samples,
            "seconds_per_step": seconds,
            "samples_per_second": samples / seconds,
            "steps_in_30_minutes": int(HALF_HOUR / seconds),
            "receptive_field": rf,
        }
        if compiled:
            row["compile_seconds"] = first
        rows.append(row)
        print(
            f"{family:8s} {label:18s} {seconds:6.3f} s/step  {samples / seconds:9.0f} samples/s",
            flush=True,
        )
    base = rows[0]["samples_per_second"]
    for row in rows:
        if "samples_per_second" in row:
            row["samples_per_second_vs_profile"] = row["samples_per_second"] / base
    rows.append(conditioning_share(params, family, base_model, steps))
    return rows


def conditioning_share(
    params: Params, family: str, model: torch.nn.Module, steps: int
) -> dict[str, Any]:
    """The share of a training step that the conditioning network's forward and backward
    take (run once per excerpt)."""
    section = params.vocoder.section(family)
    history = model.history_frames  # type: ignore[operator]
    audio, roll = _batch(params, family, section.segment_frames, history, False)
    whole, _ = time_steps(model, lambda: model.loss(audio, roll)[0], steps)  # type: ignore[operator]
    network = model.conditioning  # type: ignore[union-attr]
    alone, _ = time_steps(model, lambda: network(roll, history).square().mean(), steps)
    return {"family": family, "row": "conditioning share", "share": alone / whole}


def run(profile: str, steps: int) -> list[dict[str, Any]]:
    params = params_under_profile(profile)
    rows = []
    for family in ("wavenet", "flow"):
        rows += family_rows(params, family, steps)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = run(args.profile, args.steps)
    record = {"profile": args.profile, "threads": torch.get_num_threads(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for row in rows:
        if "share" in row:
            print(f"{row['family']}: the conditioning network is {row['share']:.0%} of a step")


if __name__ == "__main__":
    main()
