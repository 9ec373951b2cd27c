"""Stage `train_vocoder_mel@<family>`: a vocoder family conditioned on log-mel frames.

`python -m stages.train_vocoder_mel FAMILY --corpus DIR --checkpoint FILE --reports DIR`
(FAMILY one of `vocoder.mel.families`) trains as `train_vocoder@<family>` does, with the
log-mel frames of the true audio (`vocoder.mel`) as the conditioning network's input
(beside the roll with `vocoder.mel.inputs: roll_and_mel`). `synthesize_mel@<family>`
then gives it the mels of another family's render.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_family_stage
from stages._train_vocoder import PATHS, train
from wavegen_core.params import Params


def train_on_mel(params: Params, args: argparse.Namespace) -> None:
    train(params, args, mel=True)


def main(argv: list[str] | None = None) -> int:
    return run_family_stage(
        "train_vocoder_mel", PATHS, train_on_mel, argv, listed_in="mel.families"
    )


if __name__ == "__main__":
    sys.exit(main())
