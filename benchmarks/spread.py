"""Run-to-run spread of the figures BENCHMARKS.md states as comparisons.

``python -m benchmarks.spread --repo CHECKOUT --work DIR [--seeds S ...] [--only NAME ...]``
(default seeds 1234, 1235, 1236: the first is the shipped params.yaml's).

A figure from one training run says little when two runs with different seeds differ
by as much as the effect it reports. For each comparison below, every variant is
trained once per seed, with nothing but ``seed`` (and the variant's own overrides)
changed from CHECKOUT's ``params.yaml``; the data are CHECKOUT's prepared outputs, so
the spread is that of training (initialisation, the excerpts drawn, augmentation), not
of the corpus. CHECKOUT must hold the outputs the stages read: in a clone of the tiny
profile, ``dvc repro train_music_transformer`` first.

For each variant: the value per seed, the mean, the sample standard deviation and the
range; for a comparison of two variants, the difference per seed (paired: same seed,
same excerpts where the models draw alike) and in how many seeds it has the sign of
the mean difference. Results go to ``DIR/spread.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wavegen_core.files import write_json

DEFAULT_SEEDS = (1234, 1235, 1236)  # the first is the shipped params.yaml's


@dataclass(frozen=True)
class Comparison:
    """Variants of one training run, the commands that make it, the figure read back."""

    name: str
    what: str
    variants: dict[str, dict[str, Any]]
    # Stage commands (argv after `python -m`); {repo} and {run} are filled in.
    commands: tuple[tuple[str, ...], ...]
    # The figure, read from the run's folder; higher_is_better only words the verdict.
    figure: Callable[[Path], float]
    higher_is_better: bool
    required: tuple[str, ...] = field(default=())


def _json(*keys: str, under: str) -> Callable[[Path], float]:
    def read(run: Path) -> float:
        value: Any = json.loads((run / under).read_text())
        for key in keys:
            value = value[key]
        return float(value)

    return read


COMPARISONS = (
    Comparison(
        name="attention",
        what="Music Transformer validation NLL (nats/event), relative against absolute",
        variants={
            "relative": {},
            "absolute": {"music_transformer.model.attention": "absolute"},
        },
        commands=(
            (
                "stages.train_music_transformer",
                "--prepared", "{repo}/data/prepared",
                "--transcribed", "{repo}/data/transcribed",
                "--checkpoint", "{run}/checkpoint.pt",
                "--reports", "{run}/reports",
            ),
        ),
        figure=_json("eval/nll", under="reports/metrics.json"),
        higher_is_better=False,
        required=("data/prepared", "data/transcribed"),
    ),
    Comparison(
        name="tier_usage",
        what="tier 1 codebook usage on the test split (encode@1)",
        variants={"shipped": {}},
        commands=(
            (
                "stages.train_vqvae", "1",
                "--input", "{repo}/data/prepared",
                "--checkpoint", "{run}/tier1/checkpoint.pt",
                "--reports", "{run}/train",
            ),
            (
                "stages.encode", "1",
                "--input", "{repo}/data/prepared",
                "--checkpoint", "{run}/tier1/checkpoint.pt",
                "--out", "{run}/codes",
                "--reports", "{run}/encode",
            ),
        ),
        figure=_json("test", "usage", under="encode/metrics.json"),
        higher_is_better=True,
        required=("data/prepared",),
    ),
    Comparison(
        name="excitation",
        what="GAN vocoder, log-mel L1 of generated validation audio, harmonic against none",
        variants={
            "harmonic": {"vocoder.conditioning.excitation": "harmonic"},
            "none": {"vocoder.conditioning.excitation": "none"},
        },
        commands=(
            (
                "stages.train_vocoder", "gan",
                "--corpus", "{repo}/data/prepared",
                "--checkpoint", "{run}/checkpoint.pt",
                "--reports", "{run}/reports",
            ),
        ),
        figure=_json("eval/generated_mel_l1", under="reports/metrics.json"),
        higher_is_better=False,
        required=("data/prepared",),
    ),
)  # fmt: skip


def write_params(source: Path, target: Path, seed: int, overrides: dict[str, Any]) -> None:
    """``source``'s params with ``seed`` and dotted-key ``overrides`` replaced."""
    params = yaml.safe_load(source.read_text())
    params["seed"] = seed
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        if leaf not in node:
            raise KeyError(f"{dotted}: no such key in {source}")
        node[leaf] = value
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(params, sort_keys=False))


def run_variant(comparison: Comparison, variant: str, seed: int, repo: Path, work: Path) -> float:
    """Train (or reuse a finished run of) one variant at one seed; its figure."""
    run = work / comparison.name / variant / f"seed{seed}"
    done = run / "figure.json"
    if done.is_file():
        return float(json.loads(done.read_text())["value"])
    params = run / "params.yaml"
    write_params(repo / "params.yaml", params, seed, comparison.variants[variant])
    env = {**os.environ, "PYTHONPATH": str(repo)}
    for command in comparison.commands:
        argv = [part.format(repo=repo, run=run) for part in command]
        print(f"[{comparison.name} {variant} seed {seed}] python -m {' '.join(argv)}", flush=True)
        subprocess.run(
            [sys.executable, "-m", *argv, "--params", str(params)], cwd=repo, env=env, check=True
        )
    value = comparison.figure(run)
    write_json(done, {"value": value})
    return value


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def measure(comparison: Comparison, seeds: list[int], repo: Path, work: Path) -> dict[str, Any]:
    missing = [path for path in comparison.required if not (repo / path).exists()]
    if missing:
        raise SystemExit(
            f"{comparison.name}: {repo} lacks {', '.join(missing)}; "
            "run `dvc repro train_music_transformer` there first"
        )
    per_variant = {
        variant: {seed: run_variant(comparison, variant, seed, repo, work) for seed in seeds}
        for variant in comparison.variants
    }
    result: dict[str, Any] = {
        "what": comparison.what,
        "seeds": seeds,
        "variants": {
            variant: {"values": list(values.values()), **summarize(list(values.values()))}
            for variant, values in per_variant.items()
        },
    }
    if len(per_variant) == 2:
        first, second = per_variant.values()
        differences = [first[seed] - second[seed] for seed in seeds]
        mean = statistics.fmean(differences)
        result["difference"] = {
            "of": " - ".join(per_variant),
            "values": differences,
            **summarize(differences),
            "same_sign": sum((d > 0) == (mean > 0) and d != 0 for d in differences),
        }
    return result


def _print(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}: {result['what']}, seeds {result['seeds']}")
    print("| variant | per seed | mean | sd | range |")
    print("|---|---|---|---|---|")
    rows = dict(result["variants"])
    if "difference" in result:
        rows[result["difference"]["of"]] = result["difference"]
    for label, row in rows.items():
        values = ", ".join(f"{v:.3f}" for v in row["values"])
        print(
            f"| {label} | {values} | {row['mean']:.3f} | {row['sd']:.3f} "
            f"| {row['min']:.3f} – {row['max']:.3f} |"
        )
    if "difference" in result:
        difference = result["difference"]
        seeds = len(result["seeds"])
        print(f"the difference has the mean's sign in {difference['same_sign']} of {seeds} seeds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="checkout with the inputs")
    parser.add_argument("--work", type=Path, required=True, help="runs and spread.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    names = [comparison.name for comparison in COMPARISONS]
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    args = parser.parse_args(argv)
    repo, work = args.repo.resolve(), args.work.resolve()
    results = {}
    for comparison in COMPARISONS:
        if comparison.name in args.only:
            results[comparison.name] = measure(comparison, args.seeds, repo, work)
            write_json(work / "spread.json", results)
    for name, result in results.items():
        _print(name, result)


if __name__ == "__main__":
    main()
