"""Stage `render_variants`: the transcriber's extra training material (`data.variants`).

`python -m stages.render_variants --corpus DIR --out DIR --reports DIR` renders the
train pieces of the prepared corpus again (other soundfonts, transposed, at another
speed, played another way) and generated etudes into `--out` (`{audio,midi}/`,
`manifest.json` whose pieces record how each was rendered, `rejected.json`), with
`metrics.json` (size, soundfonts used, the keys the material spans) and a picture of
one rendering under `--reports`. Only `train_transcriber` reads it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from stages._common import run_stage
from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.variants import VariantJob, render_variants, summarize_variants
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.files import write_json
from wavegen_core.midi.io import load_midi
from wavegen_core.params import Params

PATHS = {
    "corpus": "the prepared corpus (its train split is rendered again)",
    "out": "the variants corpus",
    "reports": "metrics and picture",
}
PICTURE = "example.png"


def render(params: Params, args: argparse.Namespace) -> None:
    out_dir, report_dir = args.out, args.reports
    job = VariantJob(
        variants=params.data.variants,
        render=params.data.render,
        sample_rate=params.audio.sample_rate,
        seed=params.seed,
        corpus=args.corpus,
    )
    result = render_variants(job, read_manifest(args.corpus), out_dir, params.data.num_workers)
    write_json(
        report_dir / "metrics.json", summarize_variants(result.pieces, result.rejected, out_dir)
    )
    (report_dir / PICTURE).unlink(missing_ok=True)
    if result.pieces:
        example = result.pieces[0]
        assert example.midi is not None
        plot_audio_and_midi(
            report_dir / PICTURE,
            load_audio(out_dir / example.audio, params.audio.sample_rate),
            params.audio.sample_rate,
            load_midi(out_dir / example.midi),
            title=textwrap.fill(
                f"{example.id}: "
                + ", ".join(
                    f"{key} {Path(str(value)).name if key == 'soundfont' else value}"
                    for key, value in (example.rendering or {}).items()
                ),
                width=110,
            ),
        )


def main(argv: list[str] | None = None) -> int:
    return run_stage("render_variants", PATHS, render, argv)


if __name__ == "__main__":
    sys.exit(main())
