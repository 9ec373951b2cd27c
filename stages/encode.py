"""Stage `encode@<k>`: every piece of the level below turned into tier k's codes.

`python -m stages.encode K --input DIR --checkpoint FILE --out DIR --reports DIR` runs
tier K's encoder and quantiser (its checkpoint from `train_vqvae@<K>`) on the top-level
`device` over the whole corpus at the level below (`--input`, all splits) and writes
`--out` (codes per piece, the code vectors, a manifest; see
:mod:`wavegen_core.data.codes`): the only input of tier K+1 and, for the top tier, of
the prior. `metrics.json` under `--reports` has the codebook usage (fraction of codes
used) and perplexity per split, the codes per second and the bitrate; `usage.png`
shows how often each code occurs on the test split.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from stages._common import run_tier_stage
from wavegen_core import __version__
from wavegen_core.data.codes import (
    check_level_below,
    level_digest,
    load_level,
    write_codes,
)
from wavegen_core.files import atomic_path, replace_dir, staging_dir, write_json
from wavegen_core.models.hierarchy.quantiser import histogram_perplexity, histogram_usage
from wavegen_core.models.hierarchy.vqvae import SPEC, encode_piece
from wavegen_core.params import Params
from wavegen_core.progress import log, progress_bar
from wavegen_core.training.device import choose_device

SPLITS = ("train", "validation", "test", "unlabelled")


PATHS = {
    "input": "the level below: the prepared corpus for tier 1, tier K-1's codes above",
    "checkpoint": "the tier's checkpoint",
    "out": "the tier's codes of every piece",
    "reports": "usage metrics and picture",
}


def split_scores(counts: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Codebook usage and perplexity of the codes of each split that has any, from
    each split's code histogram."""
    scores = {}
    for split in SPLITS:
        if split in counts and counts[split].sum() > 0:
            histogram = torch.from_numpy(counts[split]).float()
            scores[split] = {
                "usage": float(histogram_usage(histogram)),
                "perplexity": float(histogram_perplexity(histogram)),
                "codes": int(counts[split].sum()),
            }
    return scores


def plot_usage(path: Path, counts: np.ndarray, tier: int, split: str) -> None:
    """Code counts, most used first, on a log scale: a flat curve is a well-used codebook."""
    figure = Figure(figsize=(8, 3))
    axes = figure.subplots()
    ordered = np.sort(counts)[::-1]
    axes.bar(np.arange(len(ordered)), np.maximum(ordered, 0.5), width=1.0, color="tab:blue")
    axes.set_yscale("log")
    axes.set_xlabel("codes, most used first")
    axes.set_ylabel("occurrences")
    used = int((counts > 0).sum())
    axes.set_title(f"tier {tier}: {used} of {len(counts)} codes used on the {split} split")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")


def encode(params: Params, args: argparse.Namespace) -> None:
    config, tier = params.vqvae, args.tier
    level, rejected = load_level(args.input, params.audio.sample_rate, stream=True)
    check_level_below(level, tier, args.input)
    device = choose_device(params.device)
    model = SPEC.load(args.checkpoint, device)
    codebook_size = model.quantiser.codebook_size
    # Each piece's codes go to disk as they are made, and into its split's histogram.
    records = [
        {"id": p.id, "split": p.split, "length": -(-p.length // model.hop)} for p in level.pieces
    ]
    counts: dict[str, np.ndarray] = {}

    def codes() -> Iterator[np.ndarray]:
        bar = progress_bar(total=len(level.pieces), desc=f"encode@{tier}", unit="piece")
        for piece in level.pieces:
            values = encode_piece(model, piece.whole())
            histogram = counts.setdefault(piece.split, np.zeros(codebook_size, dtype=np.int64))
            histogram += np.bincount(values, minlength=codebook_size)
            bar.update(1)
            yield values
        bar.close()

    codes_per_second = params.audio.sample_rate / config.total_hop(tier)
    info = {
        "level": f"tier {tier} codes",
        "tier": tier,
        "hop": model.hop,
        "samples_per_step": config.total_hop(tier),
        "sample_rate": params.audio.sample_rate,
        "codes_per_second": codes_per_second,
        "codebook_size": codebook_size,
        "code_dim": model.quantiser.dim,
        "wavegen_version": __version__,
    }
    target = Path(args.out)
    key = hashlib.sha256(
        level_digest(args.input).encode() + Path(args.checkpoint).read_bytes()
    ).hexdigest()[:16]
    staging = staging_dir(target, key)
    write_codes(staging, records, codes(), model.quantiser.codebook.cpu().numpy(), info)
    replace_dir(staging, target)

    scores = split_scores(counts)
    shown = "test" if "test" in scores else next(iter(scores))
    report = Path(args.reports)
    plot_usage(report / "usage.png", counts[shown].astype(np.float32), tier, shown)
    write_json(
        report / "metrics.json",
        {
            **scores,
            "codebook_size": codebook_size,
            "codes_per_second": codes_per_second,
            "bitrate": codes_per_second * math.log2(codebook_size),
            "pieces": len(records),
            "rejected": rejected,
        },
    )
    log.info(
        "encode@%d: %d pieces, %.1f codes/s, usage %s",
        tier,
        len(records),
        codes_per_second,
        ", ".join(f"{split} {s['usage']:.2f}" for split, s in scores.items()),
    )


def main(argv: list[str] | None = None) -> int:
    return run_tier_stage("encode", PATHS, encode, argv)


if __name__ == "__main__":
    sys.exit(main())
