"""Stage `transcribe`: the unlabelled pool, train and validation audio -> data/transcribed/.

As in Wave2Midi2Wave, the transcriber turns audio into the MIDI corpus the Music
Transformer learns from (the unlabelled pool and the train split) and validates on
(the validation split); the test split is left to the evaluations.
`transcription.backend` picks our model or basic-pitch.
`python -m stages.transcribe --corpus DIR --checkpoint FILE --out DIR --reports DIR`
writes `midi/<piece>.mid` and `manifest.json` (the prepared corpus's records, pointing
at the transcriptions), `rejected.json` under `--out`; metrics (and, for pieces that
have reference MIDI, how well the transcriptions agree with it) and a picture under
`--reports`. Inference runs on the top-level `device`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stages._common import run_stage
from wavegen_core import __version__
from wavegen_core.audio.io import AudioReadError, load_audio
from wavegen_core.data.manifest import Piece, read_manifest, write_manifest
from wavegen_core.errors import WavegenError
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.evaluation.transcription import mean_metrics, transcription_metrics
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.midi.io import load_midi, write_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcription.transcribers import make_transcriber
from wavegen_core.params import Params
from wavegen_core.progress import log, progress
from wavegen_core.training.device import choose_device

PATHS = {
    "corpus": "the prepared corpus",
    "checkpoint": "the transcriber's checkpoint (read when transcription.backend is model)",
    "out": "the transcribed corpus",
    "reports": "metrics and picture",
}
# The pieces transcribed: audio without MIDI, the audio the transcriber trained on, and
# the validation audio (the symbolic model's validation set, in the training domain).
SPLITS = ("unlabelled", "train", "validation")


def _key(params: Params, args: argparse.Namespace, pieces: list[Piece]) -> str:
    """Hash of what changes the transcriptions: names the staging directory (resume).

    The audio is identified by size and modification time: a re-prepared corpus gets
    new files, so a killed run is only resumed over the very files it started on.
    """
    config = params.transcription
    relevant: dict[str, Any] = {
        "backend": config.backend,
        "decoding": config.decoding.model_dump(),
        "chunk": [config.chunk_seconds, config.overlap_seconds],
        "version": __version__,
        "audio": [[piece.id, *_identity(args.corpus / piece.audio)] for piece in pieces],
    }
    if config.backend == "model":
        relevant["checkpoint"] = hashlib.sha256(args.checkpoint.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def _identity(path: Path) -> tuple[int, int] | tuple[None, None]:
    try:
        stat = path.stat()
    except OSError:  # a missing file is reported when it is transcribed
        return None, None
    return stat.st_size, stat.st_mtime_ns


def _transcribed(piece: Piece, audio: Path, out_dir: Path, midi_rel: str, notes: int) -> Piece:
    """The prepared record, pointing at the transcription; the audio stays where it is,
    named relative to ``out_dir``."""
    relative = Path(os.path.relpath(audio, out_dir)).as_posix()
    return replace(piece, audio=relative, midi=midi_rel, has_midi=True, notes=notes)


def transcribe(params: Params, args: argparse.Namespace) -> None:
    config = params.transcription
    corpus, out_dir = args.corpus, args.out
    pieces = [p for p in read_manifest(corpus) if p.split in SPLITS]
    if not pieces:
        raise WavegenError(f"{corpus} has no piece in the splits {', '.join(SPLITS)}")
    device = choose_device(params.device)
    transcriber = make_transcriber(
        config.backend, args.checkpoint, device, **config.inference_settings()
    )
    staging = staging_dir(out_dir, _key(params, args, pieces))
    records = staging / "records"
    done = {path.stem for path in records.glob("*.json")}
    log.info(
        "transcribe: %d pieces with %s (%d already done)", len(pieces), config.backend, len(done)
    )
    for piece in progress(pieces, total=len(pieces), desc="transcribe", unit="piece"):
        if piece.id in done:
            continue
        try:
            midi = transcriber(corpus / piece.audio)
        except (AudioReadError, OSError) as err:
            outcome: dict[str, Any] = {"rejected": {"id": piece.id, "reason": str(err)}}
        else:
            midi_rel = f"midi/{piece.id}.mid"
            write_midi(staging / midi_rel, midi)
            record = _transcribed(
                piece, corpus / piece.audio, out_dir, midi_rel, len(piano_notes(midi))
            )
            outcome = {"piece": asdict(record)}
        write_json(records / f"{piece.id}.json", outcome)
    outcomes = [json.loads(path.read_text()) for path in sorted(records.glob("*.json"))]
    done_pieces = [Piece(**o["piece"]) for o in outcomes if "piece" in o]
    rejected = [o["rejected"] for o in outcomes if "rejected" in o]
    if not done_pieces:
        reasons = "; ".join(f"{r['id']}: {r['reason']}" for r in rejected[:5])
        raise WavegenError(f"no piece could be transcribed ({reasons})")
    write_json(staging / "rejected.json", rejected)
    write_manifest(staging, done_pieces, transcriber=config.backend)
    metrics = _metrics(done_pieces, rejected, corpus, staging, config.backend)
    _picture(done_pieces, staging, args.reports / "example.png", params)
    for path in records.glob("*.json"):
        path.unlink()
    records.rmdir()
    replace_dir(staging, out_dir)
    write_json(args.reports / "metrics.json", metrics)
    log.info("transcribe: %d pieces, %d rejected -> %s", len(done_pieces), len(rejected), out_dir)


def _metrics(
    pieces: list[Piece],
    rejected: list[dict[str, str]],
    corpus: Path,
    staging: Path,
    backend: str,
) -> dict[str, Any]:
    """Corpus summary, and agreement with the reference MIDI where a piece has one."""
    metrics: dict[str, Any] = {
        "backend": backend,
        "pieces": len(pieces),
        "rejected": len(rejected),
        "notes": sum(p.notes for p in pieces),
        "audio_seconds": round(sum(p.duration for p in pieces), 2),
    }
    originals = {p.id: p for p in read_manifest(corpus)}
    agreement = []
    for piece in pieces:
        reference = originals[piece.id].midi
        if reference is None or piece.midi is None:
            continue
        truth = piano_notes(load_midi(corpus / reference))
        if truth:
            estimate = piano_notes(load_midi(staging / piece.midi, allow_empty=True))
            agreement.append(transcription_metrics(truth, estimate))
    if agreement:
        mean = mean_metrics(agreement)
        metrics["agreement_with_reference"] = {
            "pieces": len(agreement),
            **{name: mean[name] for name in ("onset_f1", "offset_f1", "frame_f1")},
        }
    return metrics


def _picture(pieces: list[Piece], staging: Path, path: Path, params: Params) -> None:
    """Spectrogram and transcription of one piece, unlabelled if there is one.

    Drawn from the staging directory, a sibling of the output, so ``piece.audio``
    (relative to the transcribed corpus) resolves before the corpus is swapped in.
    """
    piece = next((p for p in pieces if p.split == "unlabelled"), pieces[0])
    assert piece.midi is not None
    rate = params.audio.sample_rate
    plot_audio_and_midi(
        path,
        load_audio(staging / piece.audio, rate),
        rate,
        load_midi(staging / piece.midi, allow_empty=True),
        title=f"{piece.id} transcribed by {params.transcription.backend} ({piece.split})",
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("transcribe", PATHS, transcribe, argv)


if __name__ == "__main__":
    sys.exit(main())
