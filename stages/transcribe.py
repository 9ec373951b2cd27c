"""Stage `transcribe`: the unlabelled pool, train and validation audio -> data/transcribed/.

As in Wave2Midi2Wave, the transcriber turns audio into the MIDI corpus the Music
Transformer learns from (the unlabelled pool and the train split) and validates on
(the validation split); the test split is left to the evaluations.
`transcription.backend` picks our model or basic-pitch.
Writes `data/transcribed/midi/<piece>.mid` and `manifest.json` (the prepared corpus's
records, pointing at the transcriptions), `rejected.json`; metrics (and, for pieces
that have reference MIDI, how well the transcriptions agree with it) and a picture
under `reports/transcribe/`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stages._common import run_stage
from wavegen_core import __version__
from wavegen_core.audio import load_audio
from wavegen_core.audio.io import AudioReadError
from wavegen_core.config import Params
from wavegen_core.data import read_manifest
from wavegen_core.data.manifest import Piece, write_manifest
from wavegen_core.errors import WavegenError
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.evaluation.transcription import mean_metrics, transcription_metrics
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.midi import load_midi
from wavegen_core.midi.io import write_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcribers import make_transcriber
from wavegen_core.progress import log, progress
from wavegen_core.training import choose_device

CORPUS = Path("data/prepared")
CHECKPOINT = Path("models/transcriber/checkpoint.pt")
OUT_DIR = Path("data/transcribed")
REPORT_DIR = Path("reports/transcribe")
# The pieces transcribed: audio without MIDI, the audio the transcriber trained on, and
# the validation audio (the symbolic model's validation set, in the training domain).
SPLITS = ("unlabelled", "train", "validation")


def _key(params: Params, pieces: list[Piece]) -> str:
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
        "audio": [[piece.id, *_identity(CORPUS / piece.audio)] for piece in pieces],
    }
    if config.backend == "model":
        relevant["checkpoint"] = hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def _identity(path: Path) -> tuple[int, int] | tuple[None, None]:
    try:
        stat = path.stat()
    except OSError:  # a missing file is reported when it is transcribed
        return None, None
    return stat.st_size, stat.st_mtime_ns


def _transcribed(piece: Piece, midi_rel: str, notes: int) -> Piece:
    """The prepared record, pointing at the transcription (audio stays in data/prepared)."""
    audio = Path("..") / CORPUS.name / piece.audio
    return replace(piece, audio=audio.as_posix(), midi=midi_rel, has_midi=True, notes=notes)


def transcribe(params: Params) -> None:
    config = params.transcription
    pieces = [p for p in read_manifest(CORPUS) if p.split in SPLITS]
    if not pieces:
        raise WavegenError(f"{CORPUS} has no piece in the splits {', '.join(SPLITS)}")
    device = choose_device(config.train.device or params.device, param="transcription.train.device")
    transcriber = make_transcriber(config.backend, config, CHECKPOINT, device)
    staging = staging_dir(OUT_DIR, _key(params, pieces))
    records = staging / "records"
    done = {path.stem for path in records.glob("*.json")}
    log.info(
        "transcribe: %d pieces with %s (%d already done)", len(pieces), config.backend, len(done)
    )
    for piece in progress(pieces, total=len(pieces), desc="transcribe", unit="piece"):
        if piece.id in done:
            continue
        try:
            midi = transcriber(CORPUS / piece.audio)
        except (AudioReadError, OSError) as err:
            outcome: dict[str, Any] = {"rejected": {"id": piece.id, "reason": str(err)}}
        else:
            midi_rel = f"midi/{piece.id}.mid"
            write_midi(staging / midi_rel, midi)
            record = _transcribed(piece, midi_rel, len(piano_notes(midi)))
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
    metrics = _metrics(done_pieces, rejected, staging, config.backend)
    _picture(done_pieces, staging, params)
    for path in records.glob("*.json"):
        path.unlink()
    records.rmdir()
    replace_dir(staging, OUT_DIR)
    write_json(REPORT_DIR / "metrics.json", metrics)
    log.info("transcribe: %d pieces, %d rejected -> %s", len(done_pieces), len(rejected), OUT_DIR)


def _metrics(
    pieces: list[Piece], rejected: list[dict[str, str]], staging: Path, backend: str
) -> dict[str, Any]:
    """Corpus summary, and agreement with the reference MIDI where a piece has one."""
    metrics: dict[str, Any] = {
        "backend": backend,
        "pieces": len(pieces),
        "rejected": len(rejected),
        "notes": sum(p.notes for p in pieces),
        "audio_seconds": round(sum(p.duration for p in pieces), 2),
    }
    originals = {p.id: p for p in read_manifest(CORPUS)}
    agreement = []
    for piece in pieces:
        reference = originals[piece.id].midi
        if reference is None or piece.midi is None:
            continue
        truth = piano_notes(load_midi(CORPUS / reference))
        if truth:
            estimate = piano_notes(load_midi(staging / piece.midi))
            agreement.append(transcription_metrics(truth, estimate))
    if agreement:
        mean = mean_metrics(agreement)
        metrics["agreement_with_reference"] = {
            "pieces": len(agreement),
            **{name: mean[name] for name in ("onset_f1", "offset_f1", "frame_f1")},
        }
    return metrics


def _picture(pieces: list[Piece], staging: Path, params: Params) -> None:
    """Spectrogram and transcription of one piece, unlabelled if there is one.

    Drawn from the staging directory, a sibling of data/prepared, so ``piece.audio``
    (relative to the transcribed corpus) resolves before the corpus is swapped in.
    """
    piece = next((p for p in pieces if p.split == "unlabelled"), pieces[0])
    assert piece.midi is not None
    rate = params.audio.sample_rate
    plot_audio_and_midi(
        REPORT_DIR / "example.png",
        load_audio(staging / piece.audio, rate),
        rate,
        load_midi(staging / piece.midi),
        title=f"{piece.id} transcribed by {params.transcription.backend} ({piece.split})",
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("transcribe", transcribe, argv)


if __name__ == "__main__":
    sys.exit(main())
