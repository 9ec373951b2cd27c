"""Stage `train_vocoder@<family>`: a MIDI-conditioned vocoder on the prepared audio/MIDI pairs.

`python -m stages.train_vocoder FAMILY --corpus DIR --checkpoint FILE --reports DIR`
(FAMILY one of `vocoder.families`) writes the family's checkpoint (kept across runs so
a killed run resumes) and its metrics, curves and loss picture under `--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_family_stage
from stages._training import training_device
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import load_pairs
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.loop import held_out_or_train
from wavegen_core.training.vocoder import train_vocoder

PATHS = {
    "corpus": "the prepared corpus",
    "checkpoint": "the family's checkpoint",
    "reports": "metrics and curves",
}


def train(params: Params, args: argparse.Namespace) -> None:
    config, family, corpus = params.vocoder, args.family, args.corpus
    section = config.section(family)
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, section.train, f"vocoder.{family}.train", args)
    hop = config.conditioning.hop_length
    pieces = read_manifest(corpus)
    train_pieces = [p for p in pieces if p.split == "train"]
    validation, eval_prefix = held_out_or_train(
        [p for p in pieces if p.split == "validation"], train_pieces, f"train_vocoder@{family}"
    )
    # Streamed: each excerpt read from its file, each roll window built from the notes.
    train_set = load_pairs(train_pieces, corpus, params.audio.sample_rate, hop, stream=True)
    validation_set = load_pairs(validation, corpus, params.audio.sample_rate, hop, stream=True)
    log.info(
        "train_vocoder@%s: %d train, %d validation pieces",
        family,
        len(train_set),
        len(validation_set),
    )
    train_vocoder(
        family,
        config,
        train_set,
        validation_set,
        sample_rate=params.audio.sample_rate,
        seed=params.seed,
        device=device,
        checkpoint_path=args.checkpoint,
        metrics_dir=args.reports,
        eval_prefix=eval_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    return run_family_stage("train_vocoder", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
