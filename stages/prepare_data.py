"""Stage `prepare_data`: the corpus named by `data.*` -> audio, MIDI and a manifest.

`python -m stages.prepare_data --out DIR --reports DIR` writes `{audio,midi}/`,
`manifest.json` and `rejected.json` under `--out`; summary metrics (`metrics.json`)
and a picture of one piece (`example.png`) under `--reports`.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from wavegen_core.audio.io import load_audio
from wavegen_core.data.prepare import prepare_corpus, summarize
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.files import write_json
from wavegen_core.midi.io import load_midi
from wavegen_core.params import Params

PATHS = {"out": "the prepared corpus", "reports": "metrics and picture"}


def prepare(params: Params, args: argparse.Namespace) -> None:
    out_dir, report_dir = args.out, args.reports
    result = prepare_corpus(params.prepare_job(), out_dir)
    write_json(report_dir / "metrics.json", summarize(result.pieces, result.rejected))
    example = next((p for p in result.pieces if p.has_midi), result.pieces[0])
    plot_audio_and_midi(
        report_dir / "example.png",
        load_audio(out_dir / example.audio, params.audio.sample_rate),
        params.audio.sample_rate,
        load_midi(out_dir / example.midi) if example.midi else None,
        title=f"{example.id} ({example.split}, {example.duration:.1f} s)",
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare_data", PATHS, prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
