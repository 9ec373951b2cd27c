"""Stage `evaluate_transcriber`: our transcriber (and basic-pitch) on four sets.

* ``dev``: the validation split on the other training pianos and unheard etudes, the
  set every choice about the transcriber is made on (decoding, recipe, size);
* ``test``: the prepared corpus's test split, in the training piano;
* ``reserved_piano``: the same pieces rendered with the piano reserved for evaluation;
* ``unseen_music``: other composers' music rendered with that piano (the last three
  are reported, never used to choose; all but ``test`` made by `prepare_evaluation`).

The measures of Hawthorne et al. 2018 with mir_eval (note onset, note with offset,
note with offset and velocity, frame; precision, recall, F1), per piece and their mean.
When `transcription.compare_basic_pitch` is on and basic-pitch is installed, it is
scored on the same audio, so `dvc metrics show` puts both side by side.

`python -m stages.evaluate_transcriber --corpus DIR --dev DIR --reserved DIR --unseen DIR
--checkpoint FILE --reports DIR` writes `metrics.json` (per set, the means, one block
per transcriber), `per_piece.json`, `tables.md` (a table per set, ours beside
basic-pitch) and `rolls/<set>/<piece>.png` (each transcriber against the reference)
for the first few pieces of each set under `--reports`. Inference runs on the
top-level `device`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages._common import run_stage
from wavegen_core.data.evaluation_sets import DEV, RESERVED_PIANO, UNSEEN_MUSIC
from wavegen_core.data.manifest import read_manifest
from wavegen_core.evaluation.plots import plot_transcriptions
from wavegen_core.evaluation.transcription import mean_metrics, transcription_metrics
from wavegen_core.files import atomic_open, replace_dir, staging_dir, write_json
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcription.transcribers import (
    Transcriber,
    basic_pitch_available,
    make_transcriber,
)
from wavegen_core.params import Params
from wavegen_core.progress import log, progress
from wavegen_core.training.device import choose_device

PATHS = {
    "corpus": "the prepared corpus (its test split is scored)",
    "dev": "the dev set (prepare_evaluation): what choices are made on",
    "reserved": "the test split on the reserved piano (prepare_evaluation)",
    "unseen": "other composers' music on the reserved piano (prepare_evaluation)",
    "checkpoint": "the transcriber's checkpoint",
    "reports": "metrics, per-piece scores and rolls",
}
ROLLS = "rolls"
PICTURED_PIECES = 3
TEST = "test"


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
    for stale in rolls.rglob("*.png"):
        stale.unlink()
    return rolls


def _score_set(
    name: str,
    corpus: Path,
    transcribers: list[Transcriber],
    rolls: Path,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The set's mean metrics per transcriber and its per-piece scores; pictures of its
    first pieces under ``rolls/<name>``."""
    pieces = [p for p in read_manifest(corpus) if p.split == "test" and p.midi is not None]
    per_piece: dict[str, dict[str, Any]] = {}
    for index, piece in enumerate(progress(pieces, desc=f"evaluate ({name})", unit="piece")):
        assert piece.midi is not None
        reference = piano_notes(load_midi(corpus / piece.midi))
        if not reference:
            log.warning("evaluate_transcriber: %s has no piano notes; skipped", piece.id)
            continue
        estimates = {t.name: piano_notes(t(corpus / piece.audio)) for t in transcribers}
        per_piece[piece.id] = {
            who: transcription_metrics(reference, notes) for who, notes in estimates.items()
        }
        if index < PICTURED_PIECES:
            picture = rolls / name / f"{piece.id}.png"
            plot_transcriptions(picture, reference, estimates, f"{name}: {piece.id}")
    metrics: dict[str, Any] = {"pieces": len(per_piece)}
    if per_piece:
        for transcriber in transcribers:
            metrics[transcriber.name] = mean_metrics(
                [scores[transcriber.name] for scores in per_piece.values()]
            )
    return metrics, per_piece


TABLE_COLUMNS = (
    ("onset_f1", "onset F1"),
    ("offset_f1", "with-offset F1"),
    ("frame_f1", "frame F1"),
)


def tables(metrics: dict[str, dict[str, Any]]) -> str:
    """One Markdown table per set: each transcriber's mean F1s, the best of each bold."""
    lines = ["# Transcription, per evaluation set", ""]
    for name, scores in metrics.items():
        lines.append(f"## {name} ({scores['pieces']} pieces)")
        lines.append("")
        who = [key for key in scores if key != "pieces"]
        if not who:
            lines += ["No piece to score.", ""]
            continue
        lines.append("| transcriber | " + " | ".join(title for _, title in TABLE_COLUMNS) + " |")
        lines.append("|---" * (len(TABLE_COLUMNS) + 1) + "|")
        for transcriber in who:
            cells = []
            for key, _ in TABLE_COLUMNS:
                value = scores[transcriber][key]
                best = value == max(scores[other][key] for other in who) and len(who) > 1
                cells.append(f"**{value:.3f}**" if best else f"{value:.3f}")
            lines.append(f"| {transcriber} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def evaluate(params: Params, args: argparse.Namespace) -> None:
    report_dir = args.reports
    sets = {
        DEV: args.dev,
        TEST: args.corpus,
        RESERVED_PIANO: args.reserved,
        UNSEEN_MUSIC: args.unseen,
    }
    transcribers = _transcribers(params, args.checkpoint)
    log.info("evaluate_transcriber: %s", " and ".join(t.name for t in transcribers))
    rolls = _empty_rolls(report_dir)
    metrics: dict[str, dict[str, Any]] = {}
    per_piece: dict[str, dict[str, Any]] = {}
    for name, corpus in sets.items():
        metrics[name], per_piece[name] = _score_set(name, corpus, transcribers, rolls)
        if not per_piece[name]:
            # A corpus too small for a test split (fewer than 3 labelled pieces) is not
            # an error of the pipeline: the set's scores are simply absent.
            log.warning(
                "evaluate_transcriber: %s has no piece with MIDI to score (%s)", name, corpus
            )
        for transcriber in transcribers:
            mean = metrics[name].get(transcriber.name)
            if mean:
                log.info(
                    "evaluate_transcriber: %-14s %-11s onset F1 %.3f, with offset %.3f, "
                    "frame F1 %.3f",
                    name,
                    transcriber.name,
                    mean["onset_f1"],
                    mean["offset_f1"],
                    mean["frame_f1"],
                )
    replace_dir(rolls, report_dir / ROLLS)
    write_json(report_dir / "per_piece.json", per_piece)
    with atomic_open(report_dir / "tables.md") as handle:
        handle.write(tables(metrics))
    write_json(report_dir / "metrics.json", metrics)


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate_transcriber", PATHS, evaluate, argv)


if __name__ == "__main__":
    sys.exit(main())
