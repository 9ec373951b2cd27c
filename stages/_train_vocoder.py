"""What `train_vocoder@<family>` and `train_vocoder_mel@<family>` share: training a
family on the prepared corpus's train split, validated on its validation split (see
:mod:`stages.train_vocoder`).
"""

from __future__ import annotations

import argparse

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


def train(params: Params, args: argparse.Namespace, mel: bool = False) -> None:
    """Train ``args.family`` on the roll, or with ``mel`` on the true audio's log-mel
    frames (``train_vocoder_mel``)."""
    config, family, corpus = params.vocoder, args.family, args.corpus
    stage = f"train_vocoder{'_mel' if mel else ''}@{family}"
    section = config.section(family)
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, section.train, f"vocoder.{family}.train", args)
    hop = config.conditioning.hop_length
    pieces = read_manifest(corpus)
    train_pieces = [p for p in pieces if p.split == "train"]
    validation, eval_prefix = held_out_or_train(
        [p for p in pieces if p.split == "validation"], train_pieces, stage
    )
    # Streamed: each excerpt read from its file, each roll window built from the notes.
    train_set = load_pairs(train_pieces, corpus, params.audio.sample_rate, hop, stream=True)
    validation_set = load_pairs(validation, corpus, params.audio.sample_rate, hop, stream=True)
    log.info(
        "%s: %d train, %d validation pieces",
        stage,
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
        mel=mel,
    )
