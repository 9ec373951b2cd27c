"""Transcription: speed, peak memory on long files, and quality against basic-pitch.

``python -m benchmarks.bench_transcription speed`` (part of ``make bench``):
  seconds of audio transcribed per wall second on this machine's CPU, for our model
  at the tiny and cpu profiles and for basic-pitch, on the same rendered chorale; and
  the peak memory (RSS) of a process transcribing a 2.5- and a 10-minute file, in
  chunks and, for contrast, in one piece.

``python -m benchmarks.bench_transcription quality --repo DIR``:
  for a checkout in which ``dvc repro evaluate_transcriber`` has run (any profile),
  the test-split table of that run, then both transcribers on music the model never
  saw: piano pieces by other composers from music21's corpus, rendered with the
  training soundfont and with a second General MIDI soundfont (FluidR3, Debian's
  fluid-soundfont-gm), and the test chorales rendered with the second soundfont.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from wavegen_core import profiles
from wavegen_core.audio.io import write_wav
from wavegen_core.audio.render import render_midi
from wavegen_core.config import Params, TranscriptionConfig, load_params
from wavegen_core.data.manifest import read_manifest
from wavegen_core.evaluation.transcription import mean_metrics, transcription_metrics
from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.onsets_frames import OnsetsAndFrames, transcribe_file
from wavegen_core.models.transcribers import (
    BasicPitchTranscriber,
    OnsetsAndFramesTranscriber,
    Transcriber,
    basic_pitch_available,
    make_transcriber,
)

SAMPLE_RATE = 16000
SECOND_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# Piano music in music21's corpus by composers other than Bach (the first seconds).
OTHER_COMPOSERS = (
    "mozart/k545/movement1_exposition",
    "joplin/maple_leaf_rag",
    "chopin/mazurka06-2",
    "schumann_clara/polonaise_op1n1",
    "beethoven/opus18no1/movement2",
)
EXCERPT_SECONDS = 30.0
SPEED_SECONDS = 60.0
SHORT_FILE, LONG_FILE = 150.0, 600.0


def _profile_params(name: str, base: Params) -> TranscriptionConfig:
    """The transcription params of profile ``name`` over ``base``."""
    raw = base.model_dump(mode="json")
    profiles.merge_into(raw, profiles.overlay(name))
    return TranscriptionConfig.model_validate(raw["transcription"])


def _render(midi: Any, soundfont: str, params: Params) -> np.ndarray:
    render = params.data.render
    return render_midi(
        midi,
        sample_rate=SAMPLE_RATE,
        soundfont=soundfont,
        release_tail=render.release_tail,
        peak=render.peak,
    )


def _chorale_audio(seconds: float, soundfont: str) -> np.ndarray:
    """Rendered chorales, concatenated and tiled to ``seconds`` of audio."""
    params = Params()
    pieces = []
    for corpus_id in chorale_ids()[:3]:
        midi = chorale_to_midi(corpus_id, params.data.chorales, params.seed)
        pieces.append(_render(midi, soundfont, params))
    audio = np.concatenate(pieces)
    return np.resize(audio, int(seconds * SAMPLE_RATE)).astype(np.float32)


def _audio_per_second(transcriber: Transcriber, path: Path, seconds: float) -> float:
    transcriber(path)  # warm-up (basic-pitch compiles its numba code on first use)
    start = time.perf_counter()
    transcriber(path)
    return round(seconds / (time.perf_counter() - start), 1)


def speed(work: Path) -> list[dict[str, Any]]:
    params = Params()
    path = work / "speed.wav"
    write_wav(path, _chorale_audio(SPEED_SECONDS, params.data.render.soundfont), SAMPLE_RATE)
    rows = []
    for name in ("tiny", "cpu"):
        config = _profile_params(name, params)
        # Speed depends on the architecture, not on the weights: untrained will do.
        ours = OnsetsAndFramesTranscriber(
            OnsetsAndFrames(config.model).eval(),
            config.decoding,
            config.chunk_seconds,
            config.overlap_seconds,
        )
        rate = _audio_per_second(ours, path, SPEED_SECONDS)
        rows.append({"name": f"transcribe speed, ours ({name} profile)", "audio_s_per_s": rate})
    if basic_pitch_available():
        rate = _audio_per_second(BasicPitchTranscriber(), path, SPEED_SECONDS)
        rows.append({"name": "transcribe speed, basic-pitch", "audio_s_per_s": rate})
    for seconds in (SHORT_FILE, LONG_FILE):
        long_path = work / f"long-{int(seconds)}.wav"
        write_wav(long_path, _chorale_audio(seconds, params.data.render.soundfont), SAMPLE_RATE)
        runs = [("ours (cpu profile), 20 s chunks", ["ours", str(long_path), "20"])]
        runs.append(("ours (cpu profile), one piece", ["ours", str(long_path), str(seconds)]))
        if basic_pitch_available():
            runs.append(("basic-pitch", ["basic_pitch", str(long_path), "0"]))
        for label, args in runs:
            peak, baseline = _peak_rss_mib(args)
            rows.append(
                {
                    "name": f"peak RSS, {label}, {seconds / 60:.1f}-min file",
                    "peak_rss_mib": peak,
                    "above_baseline_mib": round(peak - baseline, 1),
                }
            )
    return rows


def _peak_rss_mib(args: list[str]) -> tuple[float, float]:
    """Peak resident memory of a fresh process that transcribes one file, and its
    peak after the imports alone (the baseline), in MiB."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_transcription", "_memory", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    baseline, peak = (float(line) for line in out.strip().splitlines()[-2:])
    return peak, baseline


def _memory_child(backend: str, path: str, chunk: float) -> None:
    print(round(_high_water_mib(), 1))  # after imports: the baseline
    if backend == "basic_pitch":
        BasicPitchTranscriber()(path)
    else:
        config = _profile_params("cpu", Params())
        model = OnsetsAndFrames(config.model).eval()
        transcribe_file(model, path, config.decoding, chunk, config.overlap_seconds)
    print(round(_high_water_mib(), 1))


def _high_water_mib() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not getrusage's ru_maxrss: Linux carries that over from the parent across fork
    and exec, so a child of a large process would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _score(
    transcribers: list[Transcriber], items: list[tuple[Path, list]]
) -> dict[str, dict[str, float]]:
    table = {}
    for transcriber in transcribers:
        scores = [transcription_metrics(ref, piano_notes(transcriber(path))) for path, ref in items]
        table[transcriber.name] = mean_metrics(scores)
    return table


def _render_set(
    named_midi: list[tuple[str, Any]], soundfont: str, work: Path, params: Params
) -> list[tuple[Path, list]]:
    items = []
    for name, midi in named_midi:
        path = work / f"{Path(soundfont).stem}-{name.replace('/', '_')}.wav"
        write_wav(path, _render(midi, soundfont, params), SAMPLE_RATE)
        items.append((path, piano_notes(midi)))
    return items


def _excerpt(midi: Any, seconds: float) -> Any:
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < seconds]
        for note in instrument.notes:
            note.end = min(note.end, seconds)
    return midi


def quality(repo: Path, work: Path) -> dict[str, Any]:
    params = load_params(repo / "params.yaml")
    config = params.transcription
    evaluated = json.loads((repo / "reports/evaluate_transcriber/metrics.json").read_text())
    transcribers: list[Transcriber] = [
        make_transcriber(
            "model", repo / "models/transcriber/checkpoint.pt", **config.inference_settings()
        )
    ]
    if basic_pitch_available():
        transcribers.append(BasicPitchTranscriber())
    style = ChoralesConfig(onset_jitter=0.0)
    others = [
        (name, _excerpt(chorale_to_midi(name, style, params.seed), EXCERPT_SECONDS))
        for name in OTHER_COMPOSERS
    ]
    corpus = repo / "data/prepared"
    test_chorales = [
        (p.id, load_midi(corpus / p.midi))
        for p in read_manifest(corpus)
        if p.split == "test" and p.midi
    ]
    soundfont = params.data.render.soundfont
    return {
        "profile_test_split": {k: evaluated[k] for k in evaluated if k != "pieces"},
        "test_pieces": evaluated["pieces"],
        "other_composers_training_soundfont": _score(
            transcribers, _render_set(others, soundfont, work, params)
        ),
        "other_composers_second_soundfont": _score(
            transcribers, _render_set(others, SECOND_SOUNDFONT, work, params)
        ),
        "test_chorales_second_soundfont": _score(
            transcribers, _render_set(test_chorales, SECOND_SOUNDFONT, work, params)
        ),
    }


def run() -> list[dict[str, Any]]:
    """The speed and memory rows, for ``python -m benchmarks``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return speed(Path(tmp))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_transcription")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("speed")
    quality_parser = commands.add_parser("quality")
    quality_parser.add_argument("--repo", type=Path, default=Path("."))
    memory = commands.add_parser("_memory")
    memory.add_argument("backend")
    memory.add_argument("path")
    memory.add_argument("chunk", type=float)
    args = parser.parse_args(argv)
    if args.command == "_memory":
        _memory_child(args.backend, args.path, args.chunk)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if args.command == "speed":
            for row in speed(Path(tmp)):
                print(json.dumps(row))
        else:
            print(json.dumps(quality(args.repo.resolve(), Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
