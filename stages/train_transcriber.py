"""Stage `train_transcriber`: Onsets and Frames on data/prepared's train split.

Writes `models/transcriber/checkpoint.pt` (kept across runs so a killed run resumes)
and its metrics, curves and loss picture under `reports/train_transcriber/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages._common import run_stage
from wavegen_core.config import Params
from wavegen_core.data import read_manifest
from wavegen_core.data.segments import load_aligned
from wavegen_core.progress import log
from wavegen_core.training import choose_device
from wavegen_core.training.transcriber import train_transcriber

CORPUS = Path("data/prepared")
CHECKPOINT = Path("models/transcriber/checkpoint.pt")
REPORT_DIR = Path("reports/train_transcriber")


def train(params: Params) -> None:
    config = params.transcription
    pieces = read_manifest(CORPUS)
    train_set = load_aligned([p for p in pieces if p.split == "train"], CORPUS, config.model.mel)
    validation = [p for p in pieces if p.split == "validation"] or [
        p for p in pieces if p.split == "train"
    ]
    validation_set = load_aligned(validation, CORPUS, config.model.mel)
    log.info(
        "train_transcriber: %d train, %d validation pieces", len(train_set), len(validation_set)
    )
    device = choose_device(config.train.device or params.device, param="transcription.train.device")
    train_transcriber(
        config,
        train_set,
        validation_set,
        seed=params.seed,
        device=device,
        checkpoint_path=CHECKPOINT,
        metrics_dir=REPORT_DIR,
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_transcriber", train, argv)


if __name__ == "__main__":
    sys.exit(main())
