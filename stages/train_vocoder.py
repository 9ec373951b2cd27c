"""Stage `train_vocoder@<family>`: a MIDI-conditioned vocoder on data/prepared's audio/MIDI pairs.

`python -m stages.train_vocoder FAMILY` (wavenet, flow or gan) writes
`models/vocoder/<family>/checkpoint.pt` (kept across runs so a killed run resumes) and
its metrics, curves and loss picture under `reports/train_vocoder/<family>/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages._common import run_family_stage
from wavegen_core.config import Params
from wavegen_core.data import read_manifest
from wavegen_core.data.pairs import load_pairs
from wavegen_core.models.vocoders import family_config
from wavegen_core.progress import log
from wavegen_core.training import choose_device
from wavegen_core.training.vocoder import train_vocoder

CORPUS = Path("data/prepared")


def checkpoint_path(family: str) -> Path:
    return Path("models/vocoder") / family / "checkpoint.pt"


def report_dir(family: str) -> Path:
    return Path("reports/train_vocoder") / family


def train(params: Params, family: str) -> None:
    config = params.vocoder
    section = family_config(config, family)
    hop = config.conditioning.hop_length
    pieces = read_manifest(CORPUS)
    train_pieces = [p for p in pieces if p.split == "train"]
    validation = [p for p in pieces if p.split == "validation"] or train_pieces
    train_set = load_pairs(train_pieces, CORPUS, params.audio.sample_rate, hop)
    validation_set = load_pairs(validation, CORPUS, params.audio.sample_rate, hop)
    log.info(
        "train_vocoder@%s: %d train, %d validation pieces",
        family,
        len(train_set),
        len(validation_set),
    )
    device = choose_device(
        section.train.device or params.device, param=f"vocoder.{family}.train.device"
    )
    train_vocoder(
        family,
        config,
        train_set,
        validation_set,
        sample_rate=params.audio.sample_rate,
        seed=params.seed,
        device=device,
        checkpoint_path=checkpoint_path(family),
        metrics_dir=report_dir(family),
    )


def main(argv: list[str] | None = None) -> int:
    return run_family_stage("train_vocoder", train, argv)


if __name__ == "__main__":
    sys.exit(main())
