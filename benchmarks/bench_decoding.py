"""Choosing the transcriber's note decoding on the dev set, and what it changes.

``python -m benchmarks.bench_decoding --repo DIR --checkpoint FILE --work DIR``: for a
checkout in which ``dvc repro prepare_evaluation`` has run (any profile) and a trained
transcriber checkpoint,

1. predicts the activations of the dev set (``data/evaluation/dev``: the validation
   split on the training pianos other than the corpus's own, and etudes no training
   run reaches; ``evaluation.dev`` says how much) and of the three sets that are
   reported, once;
2. picks the decoding on the dev set alone (`search_decoding`: coordinate ascent on
   onset F1, then with-offset F1); the reserved piano and the unseen composers stay out
   of the choice;
3. scores every set with the paper's thresholds and with the chosen rule.

It prints a table and the ``transcription.decoding`` block to put in params.yaml, and
writes both, with every setting tried, to ``--work/decoding.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import Piece, read_manifest
from wavegen_core.evaluation.decoding_search import (
    PieceActivations,
    decoding_scores,
    search_decoding,
)
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import NoteDecodingConfig, piano_notes
from wavegen_core.models.transcription.onsets_frames import predict_activations
from wavegen_core.models.transcription.transcribers import SPEC
from wavegen_core.progress import progress


def activations(model: Any, corpus: Path, pieces: list[Piece], desc: str) -> list[PieceActivations]:
    """The model's predictions for each piece with MIDI, and its reference notes."""
    found = []
    for piece in progress(pieces, desc=desc, unit="piece"):
        if piece.midi is None:
            continue
        audio = load_audio(corpus / piece.audio, model.config.mel.sample_rate)
        with torch.no_grad():
            predicted = predict_activations(model, audio, chunk_seconds=20.0, overlap_seconds=2.0)
        found.append(
            PieceActivations(
                predicted["onset_probs"],
                predicted["frame_probs"],
                predicted["velocity"],
                piano_notes(load_midi(corpus / piece.midi)),
            )
        )
    return found


def _test_split(corpus: Path) -> list[Piece]:
    return [p for p in read_manifest(corpus) if p.split == "test"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    repo, work = args.repo.resolve(), args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = repo / "data/prepared"
    dev_dir = repo / "data/evaluation/dev"
    model = SPEC.load(args.checkpoint, "cpu").eval()
    fps = model.frames_per_second
    dev = activations(model, dev_dir, _test_split(dev_dir), "dev")
    if not dev:
        raise SystemExit(f"no dev piece under {dev_dir}: run `dvc repro prepare_evaluation`")
    best, trace = search_decoding(dev, fps)
    sets = {
        "dev": dev,
        "test": activations(model, corpus, _test_split(corpus), "test"),
        "reserved_piano": activations(
            model,
            repo / "data/evaluation/reserved_piano",
            _test_split(repo / "data/evaluation/reserved_piano"),
            "reserved_piano",
        ),
        "unseen_music": activations(
            model,
            repo / "data/evaluation/unseen_music",
            _test_split(repo / "data/evaluation/unseen_music"),
            "unseen_music",
        ),
    }
    table: dict[str, Any] = {}
    for label, config in (("paper", NoteDecodingConfig()), ("chosen", best)):
        for name, pieces in sets.items():
            onset, offset = decoding_scores(pieces, config, fps)
            table.setdefault(label, {})[name] = {
                "onset_f1": round(onset, 3),
                "offset_f1": round(offset, 3),
            }
    report = {
        "checkpoint": str(args.checkpoint),
        "dev_pieces": len(dev),
        "chosen": best.model_dump(),
        "table": table,
        "tried": trace,
    }
    (work / "decoding.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_decoding")
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    report = run(args)
    print(f"chosen on {report['dev_pieces']} dev pieces: {report['chosen']}")
    sets = list(report["table"]["paper"])
    print("| decoding | " + " | ".join(f"{name} onset / with offset" for name in sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    for label, scores in report["table"].items():
        cells = [f"{scores[n]['onset_f1']:.3f} / {scores[n]['offset_f1']:.3f}" for n in sets]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("transcription:\n  decoding:")
    for key, value in report["chosen"].items():
        print(f"    {key}: {'null' if value is None else value}")


if __name__ == "__main__":
    main()
