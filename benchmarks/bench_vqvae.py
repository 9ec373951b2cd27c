"""The learnt hierarchy: what a training step of tier 1 costs against a flat WaveNet, and
how fast the hierarchy samples.

``python -m benchmarks.bench_vqvae steps``: the seed's argument for hierarchy. The
tiny hierarchy's top codes stand for ``total hop`` = 8 x 4 = 32 samples each and its
prior attends over 256 of them, so the whole model conditions each sample on a context
of 8,192 samples. A single flat WaveNet that sees as far needs a receptive field of
8,192 samples (13 layers dilated 1 ... 4,096: 8,193), and to learn from it, training
excerpts at least that long (here twice: 16,384). Tier 1 only models each sample given
the codes above it (its WaveNet decoder reaches 1,025 samples; the long range is the
upper tiers' and the prior's job, at 1/8 and 1/32 of the rate), so it trains on
4,096-sample excerpts. Rows, all at the tiny profile's channels (residual 32, gate 64,
skip 64, 32 conditioning channels), batch 8, untrained (torch seed 0), Adam:

* ``tier 1 (wavenet decoder)``: encoder, quantiser and the 10-layer WaveNet p(x | codes);
* ``tier 1 (feedforward decoder)``: encoder, quantiser and the mirrored decoder with the
  spectral loss (the tiny profile's tier 1);
* ``tier 2 (feedforward decoder)``: the next tier, on 512 tier-1 codes;
* ``flat WaveNet``: 13 layers in one cycle on 16,384-sample excerpts (its conditioning
  input is a constant, so it costs what the tier-1 decoder's does per layer).

Each row runs in a fresh process: the time per step is the median of 5 steps after 2
untimed ones; the memory is the process's peak resident size (VmHWM, reset before the
first step) during those steps minus the size before the first (activations, gradients
and optimiser state; the weights are a few MB in every row). Both are also given per
training sample against the flat WaveNet, since the rows' excerpts differ in length.

``python -m benchmarks.bench_vqvae sampling``: seconds of audio per wall-clock second
that ``Hierarchy.sample`` produces for 4 s of audio, batch 1 (prior, then tier by tier
down to the waveform), for the tiny profile's hierarchy with feed-forward decoders and
with WaveNet decoders at both tiers, untrained (the speed does not depend on the
weights), after an untimed 0.5 s run; then the two phases timed apart (the prior's
2,000 codes one by one through its key/value caches, and the decoders).

Torch uses its default thread count unless ``OMP_NUM_THREADS`` says otherwise (written
into every row). Figures vary by 10 to 20 % from run to run on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from benchmarks._memory import high_water_mib, reset_high_water
from wavegen_core.models.hierarchy.config import QuantiserConfig, TierConfig, TierWaveNetConfig
from wavegen_core.models.hierarchy.prior import CodePrior
from wavegen_core.models.hierarchy.stack import Hierarchy
from wavegen_core.models.hierarchy.vqvae import Below, VQVAETier, tier_wavenet
from wavegen_core.params import Params

SAMPLE_RATE = 16000
BATCH = 8
WARMUP, TIMED = 2, 5
# The flat WaveNet's receptive field: the tiny hierarchy's 256 prior codes x 32 samples.
FLAT_LAYERS = 13
ROWS = ("tier1_wavenet", "tier1_feedforward", "tier2_feedforward", "flat_wavenet")


def _tiers(decoder: str) -> tuple[TierConfig, TierConfig, Params]:
    params = Params()
    one = params.vqvae.tier(1).model_copy(update={"decoder": decoder})
    two = params.vqvae.tier(2).model_copy(update={"decoder": decoder})
    return one, two, params


def _row_model(row: str) -> tuple[torch.nn.Module, Any, int, int]:
    """The model of ``row``, its loss on a batch, the excerpt length and receptive field."""
    torch.manual_seed(0)
    quantiser = QuantiserConfig()
    if row == "flat_wavenet":
        config = TierWaveNetConfig(layers=FLAT_LAYERS, dilation_cycle=FLAT_LAYERS)
        model = tier_wavenet(config, hop=8, code_dim=1, classes=None, sample_rate=SAMPLE_RATE)
        length = 2 * 2**FLAT_LAYERS
        audio = 0.3 * torch.randn(BATCH, length).clamp(-3, 3) / 3
        cond = torch.zeros(BATCH, 1, length // 8)
        return model, lambda: model.loss(audio, cond)[0], length, model.receptive_field
    decoder = "wavenet" if row == "tier1_wavenet" else "feedforward"
    one, two, _ = _tiers(decoder)
    if row == "tier2_feedforward":
        codebook = torch.randn(one.codebook_size, one.code_dim)
        model = VQVAETier(2, two, quantiser, Below(codebook), SAMPLE_RATE)
        codes = torch.randint(0, one.codebook_size, (BATCH, two.segment))
        return model, lambda: model.loss(codes)[0], two.segment, 0
    model = VQVAETier(1, one, quantiser, Below(), SAMPLE_RATE)
    audio = 0.3 * torch.randn(BATCH, one.segment).clamp(-3, 3) / 3
    reach = model.decoder.receptive_field if decoder == "wavenet" else 0
    return model, lambda: model.loss(audio)[0], one.segment, reach


def measure_row(row: str) -> dict[str, Any]:
    """One row, in this process: time per step and the peak memory the steps add."""
    model, loss_of, length, reach = _row_model(row)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    reset_high_water()
    before = high_water_mib()
    times = []
    for step in range(WARMUP + TIMED):
        started = time.perf_counter()
        loss = loss_of()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    return {
        "row": row,
        "excerpt_samples": length,
        "receptive_field": reach,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": statistics.median(times),
        "peak_memory_mib": high_water_mib() - before,
        "threads": torch.get_num_threads(),
    }


def steps() -> list[dict[str, Any]]:
    results = []
    for row in ROWS:
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_vqvae", "row", row],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    flat = next(r for r in results if r["row"] == "flat_wavenet")
    for result in results:
        # Per step, and per training sample: the rows' excerpts differ in length (the
        # flat WaveNet's are 4x tier 1's), so the per-step ratio is mostly that ratio.
        samples = BATCH * result["excerpt_samples"]
        flat_samples = BATCH * flat["excerpt_samples"]
        result["time_vs_flat"] = result["seconds_per_step"] / flat["seconds_per_step"]
        result["memory_vs_flat"] = result["peak_memory_mib"] / flat["peak_memory_mib"]
        result["time_per_sample_vs_flat"] = (result["seconds_per_step"] / samples) / (
            flat["seconds_per_step"] / flat_samples
        )
        result["memory_per_sample_vs_flat"] = (result["peak_memory_mib"] / samples) / (
            flat["peak_memory_mib"] / flat_samples
        )
    return results


def _hierarchy(decoder: str) -> Hierarchy:
    torch.manual_seed(0)
    one, two, params = _tiers(decoder)
    quantiser = params.vqvae.quantiser
    first = VQVAETier(1, one, quantiser, Below(), SAMPLE_RATE).eval()
    second = VQVAETier(2, two, quantiser, Below(first.quantiser.codebook), SAMPLE_RATE).eval()
    prior = CodePrior(params.vqvae.prior.model, two.codebook_size).eval()
    return Hierarchy([first, second], prior)


def sampling(seconds: float = 4.0) -> list[dict[str, Any]]:
    results = []
    for decoder in ("feedforward", "wavenet"):
        hierarchy = _hierarchy(decoder)
        hierarchy.sample(1, 0.5, SAMPLE_RATE, seed=0)
        started = time.perf_counter()
        drawn = hierarchy.sample(1, seconds, SAMPLE_RATE, seed=0)
        elapsed = time.perf_counter() - started
        # The same draw in its two phases: the prior's codes, then the decoders.
        assert hierarchy.prior is not None
        started = time.perf_counter()
        top = hierarchy.prior.sample(1, drawn.codes[-1].shape[-1], generator=torch.Generator())
        prior_seconds = time.perf_counter() - started
        started = time.perf_counter()
        hierarchy.decode(top, hierarchy.top, generator=torch.Generator().manual_seed(0))
        decoder_seconds = time.perf_counter() - started
        audio_seconds = drawn.audio.shape[-1] / SAMPLE_RATE
        results.append(
            {
                "decoders": decoder,
                "audio_seconds": audio_seconds,
                "wall_seconds": elapsed,
                "seconds_per_second": audio_seconds / elapsed,
                "prior_seconds_per_second": audio_seconds / prior_seconds,
                "decoders_seconds_per_second": audio_seconds / decoder_seconds,
                "threads": torch.get_num_threads(),
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def run() -> list[dict[str, Any]]:
    """Every row, for ``python -m benchmarks``."""
    rows = [{"name": f"vqvae training step: {r.pop('row')}", **r} for r in steps()]
    rows += [
        {"name": f"vqvae hierarchical sampling ({r.pop('decoders')} decoders)", **r}
        for r in sampling()
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vqvae")
    parser.add_argument("what", choices=["steps", "sampling", "row"])
    parser.add_argument("row", nargs="?", choices=ROWS)
    args = parser.parse_args(argv)
    if args.what == "row":
        print(json.dumps(measure_row(args.row)))
        return 0
    results = steps() if args.what == "steps" else sampling()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
