"""Transcription: speed, peak memory on long files, and quality against basic-pitch.

``python -m benchmarks.bench_transcription speed`` (part of ``make bench``):
  seconds of audio transcribed per wall second on this machine's CPU, for our model
  at the tiny and cpu profiles and for basic-pitch, on the same rendered chorale; and
  the peak memory (RSS) of a process transcribing a 2.5- and a 10-minute file, in
  chunks and, for contrast, in one piece.

``python -m benchmarks.bench_transcription ablation --repo DIR --work DIR --steps N``:
  for a checkout in which ``dvc repro prepare_evaluation`` has run (any profile), the
  transcriber trained for N steps once per row (the train split alone; + renderings
  with the training soundfonts; + transposition, tempo and etudes; + audio
  augmentation), ``--jobs`` rows at a time, each on its share of the cores
  (``WAVEGEN_THREADS``), and each scored by `evaluate_transcriber` on its four sets.
  The dev set (the validation split on the other training pianos, and unheard etudes)
  is the deciding column: the row it ranks first is the recipe to keep. The test split,
  the test split on the reserved piano and other composers on it are reported beside
  it, never used to choose. basic-pitch is scored beside the first row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._memory import high_water_mib
from wavegen_core.audio.io import write_wav
from wavegen_core.audio.render import render_midi
from wavegen_core.midi.chorales import chorale_ids, chorale_to_midi
from wavegen_core.models.transcription.onsets_frames import OnsetsAndFrames, transcribe_file
from wavegen_core.models.transcription.transcribers import (
    BasicPitchTranscriber,
    OnsetsAndFramesTranscriber,
    Transcriber,
    basic_pitch_available,
)
from wavegen_core.params import Params
from wavegen_core.profiles import params_under_profile
from wavegen_core.threads import machine_cores, runner_environment, share

SAMPLE_RATE = 16000
SPEED_SECONDS = 60.0
SHORT_FILE, LONG_FILE = 150.0, 600.0


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
        config = params_under_profile(name, params).transcription
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
    print(round(high_water_mib(), 1))  # after imports: the baseline
    if backend == "basic_pitch":
        BasicPitchTranscriber()(path)
    else:
        config = params_under_profile("cpu").transcription
        model = OnsetsAndFrames(config.model).eval()
        transcribe_file(model, path, config.decoding, chunk, config.overlap_seconds)
    print(round(high_water_mib(), 1))


# The ablation's rows: what each adds to the transcriber's training material.
ABLATION_ROWS = ("baseline", "soundfonts", "transposition_etudes", "augmentation")
# The dev set decides; the other three are reported.
EVALUATION_SETS = ("dev", "test", "reserved_piano", "unseen_music")


def _row_params(params: dict[str, Any], row: str, steps: int) -> dict[str, Any]:
    """``params`` (a params.yaml's content) for ablation ``row`` at ``steps`` steps.

    baseline: the train split alone; soundfonts: + its renderings with the training
    soundfonts and drawn FluidSynth settings, untransposed at the written speed;
    transposition_etudes: + transposition, tempo and the etudes (the params' variants);
    augmentation: + the audio augmentation."""
    params = json.loads(json.dumps(params))
    variants = params["data"]["variants"]
    if row == "baseline":
        variants.update(renderings=0, etudes=0)
    elif row == "soundfonts":
        variants.update(etudes=0, transpose=0, tempo=[1.0, 1.0])
    params["transcription"]["augment"]["enabled"] = row == "augmentation"
    params["transcription"]["train"]["steps"] = steps
    # basic-pitch's scores do not depend on the row: the first row carries them.
    params["transcription"]["compare_basic_pitch"] = row == ABLATION_ROWS[0]
    return params


def _row_commands(row_dir: Path, repo: Path) -> list[list[str]]:
    python = [sys.executable, "-m"]
    params = ["--params", str(row_dir / "params.yaml")]
    evaluation = repo / "data/evaluation"
    return [
        [
            *python,
            "stages.render_variants",
            "--corpus",
            str(repo / "data/prepared"),
            "--out",
            str(row_dir / "variants"),
            "--reports",
            str(row_dir / "render_variants"),
            *params,
        ],
        [
            *python,
            "stages.train_transcriber",
            "--corpus",
            str(repo / "data/prepared"),
            "--variants",
            str(row_dir / "variants"),
            "--checkpoint",
            str(row_dir / "checkpoint.pt"),
            "--reports",
            str(row_dir / "train_transcriber"),
            *params,
        ],
        [
            *python,
            "stages.evaluate_transcriber",
            "--corpus",
            str(repo / "data/prepared"),
            "--dev",
            str(evaluation / "dev"),
            "--reserved",
            str(evaluation / "reserved_piano"),
            "--unseen",
            str(evaluation / "unseen_music"),
            "--checkpoint",
            str(row_dir / "checkpoint.pt"),
            "--reports",
            str(row_dir / "evaluate"),
            *params,
        ],
    ]


MADE_WITH = "made_with.json"
# What a row leaves under its folder; a row that cannot be reused starts without them.
ROW_OUTPUTS = ("variants", "render_variants", "checkpoint.pt", "train_transcriber", "evaluate")


def made_with(steps: int, row_params: str, revision: str, threads: int = 1) -> dict[str, Any]:
    """What a row's figures depend on besides the corpus: steps, code, params, and the
    threads it trained on (a training run's sums depend on how many split them)."""
    digest = hashlib.md5(row_params.encode()).hexdigest()
    return {"steps": steps, "revision": revision, "params_md5": digest, "threads": threads}


def reusable(row_dir: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``row_dir`` holds a finished row made with ``wanted``: the same steps,
    params, threads and committed code (a work tree with changes vouches for nothing)."""
    record = row_dir / MADE_WITH
    if "+changes" in wanted["revision"] or not (row_dir / "evaluate/metrics.json").is_file():
        return False
    return record.is_file() and json.loads(record.read_text()) == wanted


def ablation(
    repo: Path, work: Path, steps: int, jobs: int, rows: tuple[str, ...] = ABLATION_ROWS
) -> dict[str, Any]:
    """Train and score the transcriber once per ablation row, ``jobs`` rows at a time
    (each on the cores over ``jobs``), on ``repo``'s prepared corpus, dev set and
    evaluation sets. A row already
    finished under ``work`` is read back only if it was made with the same steps, params
    and commit (recorded beside it in ``made_with.json``); otherwise it is made afresh.
    Returns each row's onset, with-offset and frame F1 per set, ours (and basic-pitch's,
    from the first row), what every row was made with, and the row the dev set ranks
    first (``chosen_on_dev``)."""
    import shutil

    import yaml

    from wavegen_core.evaluation.report.provenance import git_revision

    revision = git_revision(Path(__file__).resolve().parents[1])
    base = yaml.safe_load((repo / "params.yaml").read_text())
    threads = share(machine_cores(), jobs)
    env = {
        **os.environ,
        **runner_environment(threads),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    pending: list[tuple[str, Path]] = []
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        row_dir = work / row
        row_dir.mkdir(parents=True, exist_ok=True)
        row_params = yaml.safe_dump(_row_params(base, row, steps))
        wanted[row] = made_with(steps, row_params, revision, int(env["WAVEGEN_THREADS"]))
        if reusable(row_dir, wanted[row]):
            continue
        for name in ROW_OUTPUTS:
            path = row_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        (row_dir / MADE_WITH).unlink(missing_ok=True)
        (row_dir / "params.yaml").write_text(row_params)
        pending.append((row, row_dir))
    running: list[subprocess.Popen] = []
    scripts = [
        " && ".join(" ".join(shlex.quote(part) for part in cmd) for cmd in _row_commands(d, repo))
        for _, d in pending
    ]
    for script, (_, row_dir) in zip(scripts, pending, strict=True):
        while len([p for p in running if p.poll() is None]) >= jobs:
            time.sleep(5)
        log_file = open(row_dir / "log.txt", "w")  # noqa: SIM115 (closed with the process)
        running.append(
            subprocess.Popen(
                ["bash", "-c", script], env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        )
    for process in running:
        if process.wait() != 0:
            raise RuntimeError(f"an ablation row failed: {process.args}; see its log.txt")
    for row, row_dir in pending:
        (row_dir / MADE_WITH).write_text(json.dumps(wanted[row], indent=2))
    table: dict[str, Any] = {"steps": steps, "made_with": wanted}
    for row in rows:
        metrics = json.loads((work / row / "evaluate/metrics.json").read_text())
        for name in EVALUATION_SETS:
            for who in ("model", "basic_pitch"):
                if who in metrics[name]:
                    scores = metrics[name][who]
                    label = row if who == "model" else "basic_pitch"
                    table.setdefault(label, {})[name] = {
                        key: round(scores[key], 3) for key in ("onset_f1", "offset_f1", "frame_f1")
                    }
    table["chosen_on_dev"] = max(
        rows, key=lambda row: table[row].get("dev", {}).get("onset_f1", -1.0)
    )
    return table


def run() -> list[dict[str, Any]]:
    """The speed and memory rows, for ``python -m benchmarks``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return speed(Path(tmp))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_transcription")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("speed")
    ablation_parser = commands.add_parser("ablation")
    ablation_parser.add_argument("--repo", type=Path, default=Path("."))
    ablation_parser.add_argument("--work", type=Path, required=True)
    ablation_parser.add_argument("--steps", type=int, default=3000)
    ablation_parser.add_argument("--jobs", type=int, default=2)
    ablation_parser.add_argument(
        "--rows",
        nargs="+",
        choices=ABLATION_ROWS,
        default=list(ABLATION_ROWS),
        help="the rows to make (default: all)",
    )
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
            table = ablation(
                args.repo.resolve(), args.work.resolve(), args.steps, args.jobs, tuple(args.rows)
            )
            print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
