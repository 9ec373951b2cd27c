"""Memory of a training stage against the size of its corpus: streamed, it should not grow.

    python -m benchmarks.bench_streaming [--minutes 10] [--steps 20] [--repeats 1] [--work DIR]

Two prepared corpora are written, of ``minutes`` and of four times as many minutes of
audio (pieces of 30 s: decaying sines at random chords' pitches, with their MIDI, the
layout `prepare_data` writes), and beside each the codes directories `encode` would
write for it at the tiny profile's tiers (random codes of the right lengths). On each,
``train_transcriber``, ``train_vocoder@gan``, ``train_vqvae@1``, ``train_vqvae@2`` and
``train_prior`` run ``steps`` steps at the tiny profile's sizes, each stage in a fresh
process that reports its own peak resident memory (VmHWM) and its resident size after
imports, before the stage runs, and the same for its anonymous memory (``RssAnon``,
sampled): resident memory also counts the pages of a memory-mapped file a stage has
touched, page cache the kernel reclaims, which the codes' readers map. The corpus's
float32 audio size and its tier-1 codes' size as int64 are printed beside them: what a
stage that loaded them would hold on top. With ``--repeats N`` each stage runs N times
at each size and the table shows the medians (a stage's peak varies by some 10 % from
run to run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import yaml

from benchmarks._memory import high_water_mib
from wavegen_core.audio.io import write_wav
from wavegen_core.data.codes import write_codes
from wavegen_core.data.manifest import Piece, read_manifest, write_manifest
from wavegen_core.midi.io import write_midi
from wavegen_core.params import Params

REPO_ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
PIECE_SECONDS = 30.0
# Row: (stage module, its arguments before --checkpoint and --reports).
STAGES = {
    "train_transcriber": (
        "train_transcriber",
        ["--corpus", "{corpus}", "--variants", "{variants}"],
    ),
    "train_vocoder@gan": ("train_vocoder", ["gan", "--corpus", "{corpus}"]),
    "train_vqvae@1": ("train_vqvae", ["1", "--input", "{corpus}"]),
    "train_vqvae@2": ("train_vqvae", ["2", "--input", "{codes}/1"]),
    "train_prior": ("train_prior", ["--codes", "{codes}"]),
}


def write_corpus(root: Path, minutes: float) -> float:
    """A prepared corpus of ``minutes`` of audio (train split, one validation piece);
    its audio's size in MiB as float32."""
    from benchmarks._material import sine_render, synthetic_midi

    count = max(int(round(minutes * 60 / PIECE_SECONDS)), 2)
    pieces = []
    for index in range(count):
        name = f"p{index:04d}"
        midi = synthetic_midi(PIECE_SECONDS, index)
        write_midi(root / "midi" / f"{name}.mid", midi)
        write_wav(root / "audio" / f"{name}.wav", sine_render(midi, PIECE_SECONDS, RATE), RATE)
        pieces.append(
            Piece(
                id=name,
                audio=f"audio/{name}.wav",
                midi=f"midi/{name}.mid",
                duration=PIECE_SECONDS,
                split="validation" if index == 0 else "train",
                source="benchmark",
                has_midi=True,
                notes=len(midi.instruments[0].notes),
                origin="synthetic",
            )
        )
    write_manifest(root, pieces)
    return count * PIECE_SECONDS * RATE * 4 / 2**20


def write_codes_dirs(root: Path, corpus: Path, params: Params) -> float:
    """Codes directories ``root/<k>`` for every tier of ``params``, random codes of the
    lengths `encode` would write for ``corpus``; tier 1's codes' size in MiB as int64."""
    rng = np.random.default_rng(0)
    pieces = [(p.id, p.split, int(p.duration * RATE)) for p in read_manifest(corpus)]
    hop, size = 1, 0.0
    for key in params.vqvae.tiers:
        tier = params.vqvae.tier(int(key))
        hop *= tier.hop
        lengths: list[dict[str, Any]] = [
            {"id": name, "split": split, "length": -(-samples // hop)}
            for name, split, samples in pieces
        ]
        codes = (rng.integers(0, tier.codebook_size, r["length"]) for r in lengths)
        codebook = rng.standard_normal((tier.codebook_size, tier.code_dim)).astype(np.float32)
        info = {
            "level": f"tier {key} codes",
            "tier": int(key),
            "hop": tier.hop,
            "samples_per_step": hop,
            "sample_rate": RATE,
            "codes_per_second": RATE / hop,
            "codebook_size": tier.codebook_size,
            "code_dim": tier.code_dim,
        }
        write_codes(root / key, lengths, codes, codebook, info)
        if key == "1":
            size = sum(r["length"] for r in lengths) * 8 / 2**20
    return size


def _params(path: Path, steps: int) -> Params:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    loop = {"steps": steps, "checkpoint_every": steps, "eval_every": steps, "device": "cpu"}
    params["transcription"]["train"].update(loop)
    params["vocoder"]["gan"]["train"].update(loop)
    for tier in params["vqvae"]["tiers"].values():
        tier["train"].update(loop)
    params["vqvae"]["prior"]["train"].update(loop)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return Params.model_validate(params)


def child(stage: str, argv: list[str]) -> None:
    """Run one stage in this process and print its memory as JSON (the measured side)."""
    import importlib

    from benchmarks._memory import AnonymousPeak, reset_high_water, status_mib

    module = importlib.import_module(f"stages.{stage}")
    baseline, anonymous = status_mib("VmRSS"), status_mib("RssAnon")
    reset_high_water()
    with AnonymousPeak() as owned:
        code = module.main(argv)
    print(
        json.dumps(
            {
                "code": code,
                "baseline_mib": baseline,
                "peak_mib": high_water_mib(),
                "anonymous_baseline_mib": anonymous,
                "anonymous_peak_mib": owned.peak,
            }
        )
    )


def measure(row: str, corpus: Path, work: Path, params: Path) -> dict[str, Any]:
    stage, template = STAGES[row]
    paths = {
        "corpus": corpus,
        "variants": corpus.parent / "variants",
        "codes": corpus.parent / "codes",
    }
    argv = [part.format(**paths) for part in template]
    out = work / row
    argv += ["--checkpoint", str(out / "model.pt"), "--reports", str(out), "--params", str(params)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_streaming", "child", stage, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"{row} failed:\n{done.stderr[-2000:]}")
    return result


def run(minutes: float, steps: int, work: Path, repeats: int = 1) -> list[dict[str, Any]]:
    rows = []
    sizes, code_sizes = {}, {}
    for factor in (1, 4):
        root = work / f"x{factor}"
        sizes[factor] = write_corpus(root / "prepared", minutes * factor)
        write_manifest(root / "variants", [])
        params = root / "params.yaml"
        code_sizes[factor] = write_codes_dirs(
            root / "codes", root / "prepared", _params(params, steps)
        )
        for repeat in range(repeats):
            for stage in STAGES:
                # A fresh directory per run: a finished checkpoint would be resumed, not trained.
                result = measure(stage, root / "prepared", root / f"runs{repeat}", params)
                rows.append({"stage": stage, "minutes": minutes * factor, **result})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"\ncorpus audio as float32: {sizes[1]:.0f} MiB and {sizes[4]:.0f} MiB")
    print(f"tier 1's codes as int64: {code_sizes[1]:.0f} MiB and {code_sizes[4]:.0f} MiB\n")
    print(
        "| stage | peak above imports, X (MiB) | at 4X (MiB) | 4X / X "
        "| anonymous peak above imports, X (MiB) | at 4X (MiB) | 4X / X |"
    )
    print("|---|---|---|---|---|---|---|")
    for stage in STAGES:
        above, owned = [], []
        for factor in (1, 4):
            runs = [r for r in rows if r["stage"] == stage and r["minutes"] == minutes * factor]
            above.append(median(r["peak_mib"] - r["baseline_mib"] for r in runs))
            owned.append(
                median(r["anonymous_peak_mib"] - r["anonymous_baseline_mib"] for r in runs)
            )
        print(
            f"| {stage} | {above[0]:.0f} | {above[1]:.0f} | {above[1] / above[0]:.3f} "
            f"| {owned[0]:.0f} | {owned[1]:.0f} | {owned[1] / owned[0]:.3f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "child":
        child(argv[1], argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1, help="runs per stage and size")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args(argv)
    if args.work is not None:
        run(args.minutes, args.steps, args.work, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args.minutes, args.steps, Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
