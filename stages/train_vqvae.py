"""Stage `train_vqvae@<k>`: tier k of the VQ-VAE hierarchy, on its own.

`python -m stages.train_vqvae K --input DIR --checkpoint FILE --reports DIR` trains
tier K on the level below it (`--input`: the prepared audio for tier 1, what
`encode@<K-1>` wrote for tier K > 1, never tier K-1's checkpoint) and writes its
checkpoint (kept across runs so a killed run resumes) and its metrics, curves and loss
picture under `--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_tier_stage
from stages._training import training_device
from wavegen_core.data.codes import (
    check_level_below,
    level_digest,
    load_level,
    training_split,
)
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.loop import held_out_or_train
from wavegen_core.training.vqvae import train_tier

PATHS = {
    "input": "the level below: the prepared corpus for tier 1, tier K-1's codes above",
    "checkpoint": "the tier's checkpoint",
    "reports": "metrics and curves",
}


def train(params: Params, args: argparse.Namespace) -> None:
    tier = args.tier
    config = params.vqvae.tier(tier)
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, config.train, f"vqvae.tiers.{tier}.train", args)
    # Audio streamed from the prepared files; codes (small) in memory.
    level, rejected = load_level(args.input, params.audio.sample_rate, stream=True)
    check_level_below(level, tier, args.input)
    for bad in rejected:
        log.warning("train_vqvae@%d: skipped %s: %s", tier, bad["piece"], bad["reason"])
    train_pieces = training_split(level)
    validation, eval_prefix = held_out_or_train(
        level.split("validation"), train_pieces, f"train_vqvae@{tier}"
    )
    log.info(
        "train_vqvae@%d: %s from %s, %d train and %d validation pieces",
        tier,
        level.info["level"],
        args.input,
        len(train_pieces),
        len(validation),
    )
    train_tier(
        tier,
        params.vqvae,
        level,
        train_pieces,
        validation,
        sample_rate=params.audio.sample_rate,
        seed=params.seed,
        device=device,
        checkpoint_path=args.checkpoint,
        metrics_dir=args.reports,
        input_digest=level_digest(args.input),
        eval_prefix=eval_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    return run_tier_stage("train_vqvae", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
