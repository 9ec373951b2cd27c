"""Stage `train_transcriber`: Onsets and Frames on the prepared corpus's train split and
the extra renderings and etudes of `render_variants`.

`python -m stages.train_transcriber --corpus DIR --variants DIR --checkpoint FILE
--reports DIR` writes the checkpoint (kept across runs so a killed run resumes) and its metrics,
curves and loss picture under `--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from stages._training import training_device
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.segments import load_aligned
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.loop import held_out_or_train
from wavegen_core.training.transcriber import train_transcriber

PATHS = {
    "corpus": "the prepared corpus",
    "variants": "the transcriber's extra renderings and etudes (render_variants)",
    "checkpoint": "the transcriber's checkpoint",
    "reports": "metrics and curves",
}


def train(params: Params, args: argparse.Namespace) -> None:
    config = params.transcription
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, config.train, "transcription.train", args)
    corpus = args.corpus
    pieces = read_manifest(corpus)
    # Streamed: each excerpt's audio is read from its file; memory follows the batch.
    mel = config.model.mel
    train_set = load_aligned([p for p in pieces if p.split == "train"], corpus, mel, stream=True)
    variants = read_manifest(args.variants)
    if variants:
        train_set += load_aligned(variants, args.variants, mel, stream=True)
    validation, eval_prefix = held_out_or_train(
        [p for p in pieces if p.split == "validation"],
        [p for p in pieces if p.split == "train"],
        "train_transcriber",
    )
    validation_set = load_aligned(validation, corpus, mel, stream=True)
    log.info(
        "train_transcriber: %d train pieces (%d of them variants), %d validation pieces",
        len(train_set),
        len(variants),
        len(validation_set),
    )
    train_transcriber(
        config,
        train_set,
        validation_set,
        seed=params.seed,
        device=device,
        checkpoint_path=args.checkpoint,
        metrics_dir=args.reports,
        eval_prefix=eval_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_transcriber", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
