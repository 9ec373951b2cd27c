"""Stage `train_vocoder@<family>`: a MIDI-conditioned vocoder on the prepared audio/MIDI pairs.

`python -m stages.train_vocoder FAMILY --corpus DIR --checkpoint FILE --reports DIR`
(FAMILY one of `vocoder.families`) writes the family's checkpoint (kept across runs so
a killed run resumes) and its metrics, curves and loss picture under `--reports`.
"""

from __future__ import annotations

import sys

from stages._common import run_family_stage
from stages._train_vocoder import PATHS, train


def main(argv: list[str] | None = None) -> int:
    return run_family_stage("train_vocoder", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
