"""Stage `train_vqvae@<k>`: tier k of the VQ-VAE hierarchy, on its own.

`python -m stages.train_vqvae K` trains tier K on the level below it
(`vqvae.tiers.<K>.input`: the prepared audio for tier 1, what `encode@<K-1>` wrote for
tier K > 1, never tier K-1's checkpoint) and writes `models/vqvae/<K>/checkpoint.pt`
(kept across runs so a killed run resumes) and its metrics, curves and loss picture
under `reports/train_vqvae/<K>/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages._common import run_tier_stage
from wavegen_core.config import Params
from wavegen_core.data.codes import held_out_split, level_digest, load_level, training_split
from wavegen_core.progress import log
from wavegen_core.training import choose_device
from wavegen_core.training.vqvae import train_tier


def checkpoint_path(tier: int) -> Path:
    return Path("models/vqvae") / str(tier) / "checkpoint.pt"


def report_dir(tier: int) -> Path:
    return Path("reports/train_vqvae") / str(tier)


def train(params: Params, tier: int) -> None:
    config = params.vqvae.tier(tier)
    level, rejected = load_level(config.input, params.audio.sample_rate)
    for bad in rejected:
        log.warning("train_vqvae@%d: skipped %s: %s", tier, bad["piece"], bad["reason"])
    train_pieces = training_split(level)
    validation = held_out_split(level, "validation")
    log.info(
        "train_vqvae@%d: %s from %s, %d train and %d validation pieces",
        tier,
        level.info["level"],
        config.input,
        len(train_pieces),
        len(validation),
    )
    device = choose_device(
        config.train.device or params.device, param=f"vqvae.tiers.{tier}.train.device"
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
        checkpoint_path=checkpoint_path(tier),
        metrics_dir=report_dir(tier),
        input_digest=level_digest(config.input),
    )


def main(argv: list[str] | None = None) -> int:
    return run_tier_stage("train_vqvae", train, argv)


if __name__ == "__main__":
    sys.exit(main())
