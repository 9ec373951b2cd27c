"""Choosing the transcriber's note decoding on held-out renderings, and what it changes.

``python -m benchmarks.bench_decoding --repo DIR --checkpoint FILE --work DIR``: for a
checkout in which ``dvc repro prepare_evaluation`` has run (any profile) and a trained
transcriber checkpoint,

1. renders a tuning set under ``--work``: the validation split of the prepared corpus,
   ``--renderings`` times per piece with the training pianos other than the corpus's
   own (drawn FluidSynth settings, transposition and tempo as ``data.variants`` says),
   and ``--etudes`` etudes whose indices no training run reaches. None of it is
   trained on, and none of it is an evaluation set (the reserved piano and the unseen
   composers stay out of the choice);
2. predicts the activations of that set and of the three evaluation sets once;
3. picks the decoding on the tuning set alone (`search_decoding`: coordinate ascent on
   onset F1, then with-offset F1);
4. scores the three sets with the paper's thresholds and with the chosen rule.

It prints a table and the ``transcription.decoding`` block to put in params.yaml, and
writes both, with every setting tried, to ``--work/decoding.json``.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import Piece, read_manifest
from wavegen_core.data.prepare import build_corpus, staging_key
from wavegen_core.data.variants import VariantItem, VariantJob, make_variant
from wavegen_core.evaluation.decoding_search import (
    PieceActivations,
    decoding_scores,
    search_decoding,
)
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import NoteDecodingConfig, piano_notes
from wavegen_core.models.transcription.onsets_frames import predict_activations
from wavegen_core.models.transcription.transcribers import SPEC
from wavegen_core.params import Params, load_params
from wavegen_core.progress import progress

# Far above any `data.variants.etudes` a profile trains on, so no tuning etude was heard.
FIRST_TUNING_ETUDE = 1_000_000
TUNING_ETUDE_SECONDS = 20.0


def tuning_set(
    params: Params, corpus: Path, out: Path, renderings: int, etudes: int, workers: int = 0
) -> list[Piece]:
    """Render (or read back) the tuning set into ``out``: the validation split of
    ``corpus`` on the training pianos other than the corpus's own, and new etudes."""
    render = params.data.render
    others = [s for s in render.soundfonts if s != render.soundfont] or [render.soundfont]
    job = VariantJob(
        params.data.variants.model_copy(update={"etude_seconds": TUNING_ETUDE_SECONDS}),
        render.model_copy(update={"soundfonts": others}),
        params.audio.sample_rate,
        params.seed,
        corpus,
    )
    validation = [p for p in read_manifest(corpus) if p.split == "validation" and p.midi]
    items = [
        VariantItem(
            piece_id=f"{piece.id}.tuning{k}",
            origin=f"{piece.id} tuning rendering {k}",
            source_id=piece.id,
            source_midi=piece.midi,
            rendering=k,
        )
        for piece in validation
        for k in range(renderings)
    ]
    items += [
        VariantItem(piece_id=f"tuning-etude-{i}", origin=f"tuning etude {i}", etude=index)
        for i, index in enumerate(range(FIRST_TUNING_ETUDE, FIRST_TUNING_ETUDE + etudes))
    ]
    relevant = {"tuning": [renderings, etudes], "job": [job.seed, job.sample_rate, others]}
    result = build_corpus(
        items,
        partial(make_variant, job=job),
        out,
        key=staging_key(relevant, corpus),
        workers=workers,
        desc="tuning set",
    )
    return result.pieces


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
    params = load_params(repo / "params.yaml")
    corpus = repo / "data/prepared"
    tuning_dir = work / "tuning"
    tuning = tuning_set(params, corpus, tuning_dir, args.renderings, args.etudes)
    model = SPEC.load(args.checkpoint, "cpu").eval()
    fps = model.frames_per_second
    tuned = activations(model, tuning_dir, tuning, "tuning set")
    best, trace = search_decoding(tuned, fps)
    sets = {
        "tuning": tuned,
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
        "tuning_pieces": len(tuned),
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
    parser.add_argument("--renderings", type=int, default=2)
    parser.add_argument("--etudes", type=int, default=12)
    args = parser.parse_args(argv)
    report = run(args)
    print(f"chosen on {report['tuning_pieces']} tuning pieces: {report['chosen']}")
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
