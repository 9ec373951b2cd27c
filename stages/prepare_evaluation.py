"""Stage `prepare_evaluation`: the sets the transcriber is scored on beside the test split,
rendered with the piano reserved for evaluation (`evaluation.soundfont`).

`python -m stages.prepare_evaluation --corpus DIR --reserved DIR --unseen DIR --reports DIR`
writes two corpora (audio, MIDI, `manifest.json`, `rejected.json`): `--reserved`, the
prepared corpus's test split re-rendered with that piano, and `--unseen`, pieces of
music21's corpus by composers other than Bach (`evaluation.unseen_music`) rendered
with it; `metrics.json` (their sizes) under `--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from wavegen_core.data.evaluation_sets import (
    RESERVED_PIANO,
    UNSEEN_MUSIC,
    EvaluationJob,
    make_evaluation_set,
)
from wavegen_core.data.manifest import read_manifest
from wavegen_core.files import write_json
from wavegen_core.params import Params

PATHS = {
    "corpus": "the prepared corpus (its test split is re-rendered)",
    "reserved": "the test split on the reserved piano",
    "unseen": "music by other composers on the reserved piano",
    "reports": "metrics",
}


def prepare(params: Params, args: argparse.Namespace) -> None:
    job = EvaluationJob(
        evaluation=params.evaluation,
        chorales=params.data.chorales,
        sample_rate=params.audio.sample_rate,
        release_tail=params.data.render.release_tail,
        peak=params.data.render.peak,
        seed=params.seed,
    )
    pieces = read_manifest(args.corpus)
    metrics = {}
    for name, out_dir in ((RESERVED_PIANO, args.reserved), (UNSEEN_MUSIC, args.unseen)):
        result = make_evaluation_set(
            name, job, pieces, args.corpus, out_dir, params.data.num_workers
        )
        metrics[name] = {
            "pieces": len(result.pieces),
            "rejected": len(result.rejected),
            "seconds": round(sum(p.duration for p in result.pieces), 2),
            "notes": sum(p.notes for p in result.pieces),
        }
    write_json(args.reports / "metrics.json", metrics)


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare_evaluation", PATHS, prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
