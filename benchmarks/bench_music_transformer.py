"""Music Transformer: memory of relative attention, and the speed of cached sampling.

``python -m benchmarks.bench_music_transformer attention`` (part of ``make bench``):
  the peak memory and the time of one forward and backward pass of causal attention,
  ``softmax(logits) @ v`` then ``backward`` with a fixed random output gradient, for
  batch 1, 8 heads of width 64 (D = 512), float32 on the CPU, at L = 512, 1,024 and
  2,048, with three sets of logits: ``plain`` (``attention_logits`` with no relative
  term), ``skewed`` (``attention_logits`` with relative embeddings, the paper's
  skewing) and ``reference`` (``relative_logits_reference``, the embeddings gathered
  into an ``(H, L, L, D_h)`` tensor). Each variant and length runs in a fresh child
  process: it creates the inputs, runs the same variant once at L = 64 to load its
  kernels, resets its high-water mark (VmHWM) to its current resident size, then
  runs the pass once; the memory is the VmHWM after it minus the one before. The
  time is the median of 3 further passes in the same child (VmHWM only grows, so they
  cannot disturb the memory figure). The table gives the ratios to plain, what the
  relative term adds to plain (skewed − plain, reference − plain) and how that grows
  from L/2 to L (about 2× if linear in L, 4× if quadratic). The size of one
  ``(B, H, L, L)`` float32 tensor (the logits) is listed as the unit plain attention
  is made of. A child may use all but 2 GiB of the memory available when it starts
  (an address-space limit): a pass that needs more fails there with an allocation
  error, reported as not fitting, instead of waking the kernel's OOM killer.

``python -m benchmarks.bench_music_transformer sampling`` (part of ``make bench``):
  events per second when ``sample_events`` draws 1,024 events from nothing, with the
  per-layer key/value caches (``use_cache=True``) and without (``use_cache=False``,
  every event recomputes the whole window), for untrained models (``torch`` seed 0;
  the speed depends on the architecture, not on the weights) of the tiny and the cpu
  profiles, and of the cpu profile's model with a context of 1,024, each with
  ``torch.Generator().manual_seed(0)``. With a context of 256, past the 256th event
  the uncached path recomputes a 256-long window per event while the cached one slides
  its caches and computes one position; with 1,024 the recomputed window keeps
  growing to the end, which is what the cache saves on long contexts (the paper's
  2,048).
  An untrained model draws END about once in every ``vocab.size`` events, which would
  stop a run early and leave the two paths with different counts; so during the
  benchmark a forward hook on the model sets END's logit to -inf, as ``sample_events``
  does for PAD and START, and every run returns exactly 1,024 events (checked). The
  hook's cost, one column write on the logits per event, is the same on both paths.
  Each path first samples 16 events untimed (warm-up); the timed figure is one run.

Both use torch's default thread count, which is written into every row.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks._memory import high_water_mib, reset_high_water
from wavegen_core.midi.events import END, EventVocabulary
from wavegen_core.models.symbolic.attention import attention_logits, relative_logits_reference
from wavegen_core.models.symbolic.music_transformer import (
    MusicTransformer,
    sample_events,
)
from wavegen_core.models.transcription.onsets_frames import parameter_count
from wavegen_core.params import MusicTransformerConfig
from wavegen_core.profiles import params_under_profile

REPO = Path(__file__).resolve().parent.parent
MIB = 2**20

# Attention: the shape of one layer of the paper's Piano-e-Competition model (8 heads,
# width 512), batch 1; the lengths go up to its 2,048-event sequences.
VARIANTS = ("plain", "skewed", "reference")
LENGTHS = (512, 1024, 2048)
HEADS, HEAD_DIM = 8, 64
WARMUP_LENGTH = 64
TIMING_REPEATS = 3
MEMORY_RESERVE_MIB = 2048  # left to the rest of the machine when a child sets its limit

# Sampling.
# (profile, context): the two profiles as they are, and the cpu profile's model with a
# 1,024-event context, where the uncached path recomputes windows of up to 1,024.
SAMPLING_PROFILES: tuple[tuple[str, int | None], ...] = (
    ("tiny", None),
    ("cpu", None),
    ("cpu", 1024),
)
SAMPLED_EVENTS = 1024
WARMUP_EVENTS = 16


# --------------------------------------------------------------------------- attention


def _attention_inputs(length: int) -> tuple[torch.Tensor, ...]:
    """q (pre-scaled by D_h^-0.5), k, v ``(1, H, L, D_h)`` and relative embeddings
    ``(H, L, D_h)``, all requiring grad, and a fixed output gradient like v."""
    shape = (1, HEADS, length, HEAD_DIM)
    q = (torch.randn(shape) * HEAD_DIM**-0.5).requires_grad_()
    k, v = torch.randn(shape).requires_grad_(), torch.randn(shape).requires_grad_()
    relative = (torch.randn(HEADS, length, HEAD_DIM) * HEAD_DIM**-0.5).requires_grad_()
    return q, k, v, relative, torch.randn(shape)


def _attention_pass(variant: str, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward and backward pass; the gradients are dropped afterwards."""
    q, k, v, relative, output_grad = inputs
    if variant == "plain":
        logits = attention_logits(q, k, None)
    elif variant == "skewed":
        logits = attention_logits(q, k, relative)
    else:
        logits = relative_logits_reference(q, k, relative)
    output = torch.softmax(logits, dim=-1) @ v
    del logits
    output.backward(output_grad)
    for tensor in (q, k, v, relative):
        tensor.grad = None


def _attention_child(variant: str, length: int) -> None:
    """Print, as JSON, the peak MiB above baseline and the median ms of one pass."""
    torch.manual_seed(0)
    _attention_pass(variant, _attention_inputs(WARMUP_LENGTH))  # loads the kernels
    inputs = _attention_inputs(length)
    gc.collect()
    reset = reset_high_water()
    baseline = high_water_mib()
    allowance = _limit_address_space()
    result: dict[str, Any] = {
        "variant": variant,
        "length": length,
        "threads": torch.get_num_threads(),
        "baseline_mib": round(baseline, 1),
        "high_water_reset": reset,
        "allowance_mib": round(allowance),
    }
    try:
        _attention_pass(variant, inputs)
        result["peak_mib"] = round(high_water_mib() - baseline, 1)
        times = []
        for _ in range(TIMING_REPEATS):
            start = time.perf_counter()
            _attention_pass(variant, inputs)
            times.append(time.perf_counter() - start)
        result["ms"] = round(statistics.median(times) * 1000, 1)
    except RuntimeError as error:  # an allocation beyond the allowance
        result["error"] = str(error).strip().splitlines()[0][:200]
    print(json.dumps(result))


def _limit_address_space() -> float:
    """Cap new allocations at the memory available now less a reserve; return the
    cap in MiB. Beyond it an allocation fails with an error in this process."""
    status = Path("/proc/self/status").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    virtual = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    available = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
    allowance_kib = max(available - MEMORY_RESERVE_MIB * 1024, 0)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = (virtual + allowance_kib) * 1024
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return allowance_kib / 1024


def _run_attention_child(variant: str, length: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_music_transformer", "_attention_child"]
        + [variant, str(length)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return {"variant": variant, "length": length, "error": f"exit {done.returncode}: {last}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)


def _difference(minuend: float | None, subtrahend: float | None) -> float | None:
    return None if minuend is None or subtrahend is None else round(minuend - subtrahend, 1)


def attention(lengths: tuple[int, ...] = LENGTHS) -> list[dict[str, Any]]:
    """One row per length: each variant's peak MiB and ms, and the comparisons."""
    rows: list[dict[str, Any]] = []
    added: dict[int, dict[str, float | None]] = {}
    for length in lengths:
        results = {variant: _run_attention_child(variant, length) for variant in VARIANTS}
        memory = {variant: results[variant].get("peak_mib") for variant in VARIANTS}
        times = {variant: results[variant].get("ms") for variant in VARIANTS}
        added[length] = {
            variant: _difference(memory[variant], memory["plain"])
            for variant in ("skewed", "reference")
        }
        half = added.get(length // 2, {}) if length % 2 == 0 else {}
        row: dict[str, Any] = {
            "name": f"attention fwd+bwd, L={length} (B=1, H={HEADS}, D={HEADS * HEAD_DIM}, f32)",
            "logits_mib": round(HEADS * length * length * 4 / MIB, 1),
        }
        for variant in VARIANTS:
            row[f"{variant}_mib"] = memory[variant]
        for variant in VARIANTS:
            row[f"{variant}_ms"] = times[variant]
        row["skewed_over_plain_mib"] = _ratio(memory["skewed"], memory["plain"])
        row["skewed_over_plain_ms"] = _ratio(times["skewed"], times["plain"])
        row["reference_over_plain_mib"] = _ratio(memory["reference"], memory["plain"])
        for variant in ("skewed", "reference"):
            row[f"{variant}_adds_mib"] = added[length][variant]
            # Against L/2: about 2x if what the relative term adds is linear in L, 4x if
            # quadratic.
            row[f"{variant}_adds_growth"] = _ratio(added[length][variant], half.get(variant))
        for variant in VARIANTS:
            if "error" in results[variant]:
                allowance = results[variant].get("allowance_mib")
                row[f"{variant}_error"] = results[variant]["error"]
                if allowance is not None:
                    row[f"{variant}_needs_more_than_mib"] = allowance
        row["threads"] = next(
            (r["threads"] for r in results.values() if "threads" in r), torch.get_num_threads()
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- sampling


def _profile_model(
    name: str, context: int | None = None
) -> tuple[MusicTransformer, EventVocabulary]:
    """An untrained Music Transformer of profile ``name`` (torch seed 0), and its vocabulary.

    ``context`` replaces the profile's attention context when given.
    """
    raw = params_under_profile(name).music_transformer.model_dump(mode="json")
    if context is not None:
        raw["model"]["context"] = context
    config = MusicTransformerConfig.model_validate(raw)
    vocab = EventVocabulary(config.events)
    torch.manual_seed(0)
    return MusicTransformer(config.model, vocab.size).eval(), vocab


def _never_end(module: nn.Module, inputs: Any, logits: torch.Tensor) -> None:
    """Forward hook: END is never drawn, so every run yields the events asked for."""
    logits[..., END] = -math.inf


def _events_per_second(
    model: MusicTransformer, vocab: EventVocabulary, events: int, use_cache: bool
) -> float:
    sample_events(model, vocab, max_events=WARMUP_EVENTS, use_cache=use_cache)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    sampled = sample_events(
        model, vocab, max_events=events, generator=generator, use_cache=use_cache
    )
    seconds = time.perf_counter() - start
    if len(sampled) != events:
        raise RuntimeError(f"sampled {len(sampled)} events, not {events}")
    return round(events / seconds, 1)


def sampling(events: int = SAMPLED_EVENTS) -> list[dict[str, Any]]:
    """One row per profile: events per second with and without the KV cache."""
    rows = []
    for name, context in SAMPLING_PROFILES:
        model, vocab = _profile_model(name, context)
        hook = model.register_forward_hook(_never_end)
        try:
            cached = _events_per_second(model, vocab, events, use_cache=True)
            uncached = _events_per_second(model, vocab, events, use_cache=False)
        finally:
            hook.remove()
        rows.append(
            {
                "name": f"sample {events} events, {name} profile"
                + ("" if context is None else f", context {context}")
                + " (untrained)",
                "parameters": parameter_count(model),
                "context": model.config.context,
                "events_per_s_cached": cached,
                "events_per_s_uncached": uncached,
                "cache_speedup": _ratio(cached, uncached, 1),
                "threads": torch.get_num_threads(),
            }
        )
    return rows


# --------------------------------------------------------------------------- tables


def _cell(value: Any, width: int, suffix: str = "") -> str:
    text = "—" if value is None else f"{value}{suffix}"
    return f"{text:>{width}}"


def _print_attention(rows: list[dict[str, Any]]) -> None:
    threads = rows[0]["threads"] if rows else torch.get_num_threads()
    print(f"attention forward+backward, B=1, H={HEADS}, D_h={HEAD_DIM}, float32, CPU")
    print(f"torch threads: {threads}; '—' where a pass did not fit (see the errors below)\n")
    print("peak memory above baseline, MiB")
    header = ("L", "logits", "plain", "skewed", "reference", "skew/plain", "ref/plain")
    header += ("skew adds", "(growth)", "ref adds", "(growth)")
    print(" ".join(f"{h:>10}" for h in header))
    for row in rows:
        length = row["name"].split("L=")[1].split()[0]
        cells = [length, row["logits_mib"], row["plain_mib"], row["skewed_mib"]]
        cells += [row["reference_mib"], row["skewed_over_plain_mib"]]
        cells += [row["reference_over_plain_mib"], row["skewed_adds_mib"]]
        cells += [row["skewed_adds_growth"], row["reference_adds_mib"]]
        cells += [row["reference_adds_growth"]]
        print(" ".join(_cell(c, 10) for c in cells))
    print("\ntime, ms (median of 3)")
    header = ("L", "plain", "skewed", "reference", "skew/plain")
    print(" ".join(f"{h:>10}" for h in header))
    for row in rows:
        length = row["name"].split("L=")[1].split()[0]
        cells = [length, row["plain_ms"], row["skewed_ms"], row["reference_ms"]]
        cells += [row["skewed_over_plain_ms"]]
        print(" ".join(_cell(c, 10) for c in cells))
    for row in rows:
        for variant in VARIANTS:
            if f"{variant}_error" in row:
                limit = row.get(f"{variant}_needs_more_than_mib")
                where = f" (allowance {limit} MiB)" if limit is not None else ""
                print(f"\n{row['name']}, {variant}{where}: {row[f'{variant}_error']}")


def _print_sampling(rows: list[dict[str, Any]]) -> None:
    threads = rows[0]["threads"] if rows else torch.get_num_threads()
    print(f"sampling from an untrained model, torch threads: {threads}\n")
    header = ("profile", "parameters", "context", "cached/s", "uncached/s", "speed-up")
    print(f"{header[0]:<44}" + " ".join(f"{h:>11}" for h in header[1:]))
    for row in rows:
        cells = [row["parameters"], row["context"], row["events_per_s_cached"]]
        cells += [row["events_per_s_uncached"]]
        speedup = _cell(row["cache_speedup"], 11, "x")
        print(f"{row['name']:<44}" + " ".join(_cell(c, 11) for c in cells) + " " + speedup)


def run() -> list[dict[str, Any]]:
    """The attention and sampling rows, for ``python -m benchmarks``."""
    return attention() + sampling()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_music_transformer")
    commands = parser.add_subparsers(dest="command", required=True)
    attention_parser = commands.add_parser("attention")
    attention_parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    sampling_parser = commands.add_parser("sampling")
    sampling_parser.add_argument("--events", type=int, default=SAMPLED_EVENTS)
    child = commands.add_parser("_attention_child")
    child.add_argument("variant", choices=VARIANTS)
    child.add_argument("length", type=int)
    args = parser.parse_args(argv)
    if args.command == "_attention_child":
        _attention_child(args.variant, args.length)
    elif args.command == "attention":
        _print_attention(attention(tuple(args.lengths)))
    else:
        _print_sampling(sampling(args.events))


if __name__ == "__main__":
    main()
