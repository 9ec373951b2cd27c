"""Stage `prepare_evaluation`: the dev set every choice is made on, and the sets the
transcriber is scored on beside the test split, rendered with the piano reserved for
evaluation (`evaluation.soundfont`).

`python -m stages.prepare_evaluation --corpus DIR --dev DIR --reserved DIR --unseen DIR
--reports DIR` writes three corpora (audio, MIDI, `manifest.json`, `rejected.json`):
`--dev`, the validation split on the other training pianos and unheard etudes
(`evaluation.dev`); `--reserved`, the prepared corpus's test split re-rendered with the
reserved piano; and `--unseen`, pieces of music21's corpus by composers other than Bach
(`evaluation.unseen_music`) rendered with it; `metrics.json` (their sizes) under
`--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from wavegen_core.data.evaluation_sets import (
    DEV,
    RESERVED_PIANO,
    UNSEEN_MUSIC,
    DevJob,
    EvaluationJob,
    make_dev_set,
    make_evaluation_set,
)
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.prepare import PrepareResult
from wavegen_core.files import write_json
from wavegen_core.params import Params

PATHS = {
    "corpus": "the prepared corpus (its validation and test splits are re-rendered)",
    "dev": "the validation split on the other training pianos, and unheard etudes",
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
    workers = params.data.num_workers
    dev_job = DevJob(
        dev=params.evaluation.dev,
        variants=params.data.variants,
        render=params.data.render,
        sample_rate=params.audio.sample_rate,
        seed=params.seed,
    )
    results: dict[str, PrepareResult] = {
        DEV: make_dev_set(dev_job, pieces, args.corpus, args.dev, workers)
    }
    for name, out_dir in ((RESERVED_PIANO, args.reserved), (UNSEEN_MUSIC, args.unseen)):
        results[name] = make_evaluation_set(name, job, pieces, args.corpus, out_dir, workers)
    metrics = {}
    for name, result in results.items():
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
