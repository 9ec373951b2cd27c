"""Stage `evaluate_transcriber`: our transcriber (and basic-pitch) on the test split.

The measures of Hawthorne et al. 2018 with mir_eval (note onset, note with offset,
note with offset and velocity, frame; precision, recall, F1), per piece and their mean.
When `transcription.compare_basic_pitch` is on and basic-pitch is installed, it is
scored on the same audio, so `dvc metrics show` puts both side by side.

`python -m stages.evaluate_transcriber --corpus DIR --checkpoint FILE --reports DIR`
writes `metrics.json` (means, one block per transcriber), `per_piece.json`, and
`rolls/<piece>.png` (each transcriber against the reference) for the first few test
pieces under `--reports`. Inference runs on the top-level `device`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages._common import run_stage
from wavegen_core.config import Params
from wavegen_core.data.manifest import read_manifest
from wavegen_core.errors import WavegenError
from wavegen_core.evaluation.plots import plot_transcriptions
from wavegen_core.evaluation.transcription import mean_metrics, transcription_metrics
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcribers import (
    Transcriber,
    basic_pitch_available,
    make_transcriber,
)
from wavegen_core.progress import log, progress
from wavegen_core.training.device import choose_device

PATHS = {
    "corpus": "the prepared corpus (its test split is scored)",
    "checkpoint": "the transcriber's checkpoint",
    "reports": "metrics, per-piece scores and rolls",
}
ROLLS = "rolls"
PICTURED_PIECES = 3


def _transcribers(params: Params, checkpoint: Path) -> list[Transcriber]:
    config = params.transcription
    device = choose_device(params.device)
    chosen = [make_transcriber("model", checkpoint, device, **config.inference_settings())]
    if config.compare_basic_pitch:
        if basic_pitch_available():
            chosen.append(make_transcriber("basic_pitch"))
        else:
            log.warning("evaluate_transcriber: basic-pitch is not installed; scoring ours alone")
    return chosen


def _empty_rolls(report_dir: Path) -> Path:
    """The staging directory of the pictures, emptied of any a killed run left."""
    rolls = staging_dir(report_dir / ROLLS, "pictures")
    for stale in rolls.glob("*.png"):
        stale.unlink()
    return rolls


def evaluate(params: Params, args: argparse.Namespace) -> None:
    corpus, report_dir = args.corpus, args.reports
    test = [p for p in read_manifest(corpus) if p.split == "test" and p.midi is not None]
    if not test:
        # A corpus too small for a test split (fewer than 3 labelled pieces) is not
        # an error of the pipeline: the scores are simply absent.
        log.warning(
            "evaluate_transcriber: %s has no test piece with MIDI, nothing to score "
            "(data.splits.test, or more labelled pieces)",
            corpus,
        )
        replace_dir(_empty_rolls(report_dir), report_dir / ROLLS)
        write_json(report_dir / "per_piece.json", {})
        write_json(report_dir / "metrics.json", {"pieces": 0})
        return
    transcribers = _transcribers(params, args.checkpoint)
    names = [transcriber.name for transcriber in transcribers]
    log.info("evaluate_transcriber: %d test pieces, %s", len(test), " and ".join(names))
    per_piece: dict[str, dict[str, Any]] = {}
    rolls = _empty_rolls(report_dir)
    for index, piece in enumerate(progress(test, desc="evaluate_transcriber", unit="piece")):
        assert piece.midi is not None
        reference = piano_notes(load_midi(corpus / piece.midi))
        if not reference:
            log.warning("evaluate_transcriber: %s has no piano notes; skipped", piece.id)
            continue
        estimates = {t.name: piano_notes(t(corpus / piece.audio)) for t in transcribers}
        per_piece[piece.id] = {
            name: transcription_metrics(reference, notes) for name, notes in estimates.items()
        }
        if index < PICTURED_PIECES:
            plot_transcriptions(rolls / f"{piece.id}.png", reference, estimates, piece.id)
    if not per_piece:
        raise WavegenError("no test piece has piano notes to compare with")
    metrics: dict[str, Any] = {"pieces": len(per_piece)}
    for name in names:
        metrics[name] = mean_metrics([scores[name] for scores in per_piece.values()])
    replace_dir(rolls, report_dir / ROLLS)
    write_json(report_dir / "per_piece.json", per_piece)
    write_json(report_dir / "metrics.json", metrics)
    for name in names:
        mean = metrics[name]
        log.info(
            "evaluate_transcriber: %-11s onset F1 %.3f, with offset %.3f, frame F1 %.3f",
            name,
            mean["onset_f1"],
            mean["offset_f1"],
            mean["frame_f1"],
        )


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate_transcriber", PATHS, evaluate, argv)


if __name__ == "__main__":
    sys.exit(main())
