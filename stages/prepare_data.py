"""Stage `prepare_data`: the corpus named by `data.*` -> data/prepared/ (audio, MIDI, manifest).

Writes `data/prepared/{audio,midi}/`, `manifest.json`, `rejected.json`; summary metrics
and a picture of one piece under `reports/prepare_data/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages._common import run_stage
from wavegen_core.audio import load_audio
from wavegen_core.config import Params
from wavegen_core.data import prepare_corpus, summarize
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.files import write_json
from wavegen_core.midi import load_midi

OUT_DIR = Path("data/prepared")
REPORT_DIR = Path("reports/prepare_data")


def prepare(params: Params) -> None:
    result = prepare_corpus(params, OUT_DIR)
    write_json(REPORT_DIR / "metrics.json", summarize(result.pieces, result.rejected))
    example = next((p for p in result.pieces if p.has_midi), result.pieces[0])
    plot_audio_and_midi(
        REPORT_DIR / "example.png",
        load_audio(OUT_DIR / example.audio, params.audio.sample_rate),
        params.audio.sample_rate,
        load_midi(OUT_DIR / example.midi) if example.midi else None,
        title=f"{example.id} ({example.split}, {example.duration:.1f} s)",
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare_data", prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
