"""Stage `train_music_transformer`: the symbolic model of Wave2Midi2Wave.

Trains on the transcriptions of `transcribe` (`music_transformer.corpus: transcribed`,
the Wave2Midi2Wave recipe: the unlabelled pool and the train split) or on the prepared
corpus's own MIDI (`ground_truth`: the train split), and validates on the validation
split of the same corpus, so that the validation curve follows the data the model fits.
The test (`compose`) is the ground-truth MIDI of the test split for both, so that the
two corpora are scored alike. `python -m stages.train_music_transformer --prepared DIR
--transcribed DIR --checkpoint FILE --reports DIR` writes the checkpoint (kept across
runs so a killed run resumes), the curves and loss picture under `--reports`, and
`corpus.json` there: the pieces used and those skipped, with reasons.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from stages._training import training_device
from wavegen_core.data.manifest import midi_files
from wavegen_core.errors import WavegenError
from wavegen_core.files import write_json
from wavegen_core.params import MusicTransformerConfig, Params
from wavegen_core.progress import log
from wavegen_core.training.music_transformer import NotePiece, load_pieces, train_music_transformer

PATHS = {
    "prepared": "the prepared corpus (its MIDI: the ground_truth corpus)",
    "transcribed": "the transcribed corpus (the transcribed corpus)",
    "checkpoint": "the Music Transformer's checkpoint",
    "reports": "metrics, curves and corpus.json",
}


def load_corpus(
    config: MusicTransformerConfig, args: argparse.Namespace
) -> tuple[list[NotePiece], list[NotePiece]]:
    """Train and validation pieces; the skipped ones are logged and listed in corpus.json."""
    root = args.transcribed if config.corpus == "transcribed" else args.prepared
    train, rejected = load_pieces(midi_files(root, ("train", "unlabelled")), config.events)
    validation, rejected_validation = load_pieces(midi_files(root, ("validation",)), config.events)
    rejected += rejected_validation
    for entry in rejected:
        log.warning("skipped %s (%s): %s", entry["piece"], entry["path"], entry["reason"])
    write_json(
        args.reports / "corpus.json",
        {
            "corpus": config.corpus,
            "train": [piece.name for piece in train],
            "validation": [piece.name for piece in validation],
            "rejected": rejected,
        },
    )
    if not train:
        raise WavegenError(
            f"no readable MIDI in the {config.corpus} corpus ({len(rejected)} skipped)"
        )
    return train, validation


def train(params: Params, args: argparse.Namespace) -> None:
    config = params.music_transformer
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, config.train, "music_transformer.train", args)
    train_set, validation = load_corpus(config, args)
    log.info(
        "train_music_transformer: %d %s pieces, %d validation pieces",
        len(train_set),
        config.corpus,
        len(validation),
    )
    train_music_transformer(
        config,
        train_set,
        validation,
        seed=params.seed,
        device=device,
        checkpoint_path=args.checkpoint,
        metrics_dir=args.reports,
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_music_transformer", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
