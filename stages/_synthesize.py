"""What `synthesize@<family>` and `synthesize_mel@<family>` share: the pieces to
render (the test split's, cut, with their true audio, and the composed ones), the
reference renders they are scored beside, and writing audio, pictures and scores
(see :mod:`stages.synthesize`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import torch

from wavegen_core import __version__
from wavegen_core.audio.io import load_audio, write_wav
from wavegen_core.audio.render import additive_render, noise_render, render_midi
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import roll_for_midi
from wavegen_core.errors import WavegenError
from wavegen_core.evaluation.plots import plot_audio_and_midi
from wavegen_core.evaluation.synthesis import mean_scores, notes_before, score_renders
from wavegen_core.files import atomic_path, replace_dir, staging_dir, write_json
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.transcription.onsets_frames import SPEC as TRANSCRIBER
from wavegen_core.models.transcription.transcribers import (
    BasicPitchTranscriber,
    basic_pitch_available,
)
from wavegen_core.models.vocoders.conditioning import crop_or_pad
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_spec
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.device import choose_device

PATHS = {
    "corpus": "the prepared corpus (its test split)",
    "composed": "the composed pieces",
    "checkpoint": "the family's checkpoint",
    "transcriber": "the transcriber's checkpoint (transcription consistency)",
    "out": "the rendered audio and pictures",
    "reports": "metrics, speed and picture",
}


@dataclass
class Job:
    """One piece to render: its MIDI, its roll, and the true audio when there is one."""

    kind: str  # "test" or "composed"
    id: str
    midi: pretty_midi.PrettyMIDI
    roll: np.ndarray
    seconds: float
    true_audio: np.ndarray | None


def _first(items: list[Any], count: int | None) -> list[Any]:
    return items if count is None else items[:count]


def _jobs(params: Params, corpus: Path, composed_dir: Path) -> list[Job]:
    config = params.vocoder.synthesize
    rate, hop = params.audio.sample_rate, params.vocoder.conditioning.hop_length
    limit = config.max_seconds
    jobs = []
    test = [p for p in read_manifest(corpus) if p.split == "test" and p.midi is not None]
    for piece in _first(sorted(test, key=lambda p: p.id), config.test_pieces):
        assert piece.midi is not None
        audio = load_audio(corpus / piece.audio, rate)
        if limit is not None:
            audio = audio[: int(round(limit * rate))]
        midi = load_midi(corpus / piece.midi)
        roll = roll_for_midi(midi, len(audio), rate, hop)
        truth = crop_or_pad(torch.from_numpy(audio), roll.shape[1] * hop).numpy()
        jobs.append(Job("test", piece.id, midi, roll, len(audio) / rate, truth))
    manifest = composed_dir / "manifest.json"
    composed = json.loads(manifest.read_text())["pieces"] if manifest.is_file() else []
    for record in _first(composed, config.composed_pieces):
        midi = load_midi(composed_dir / record["midi"])
        seconds = midi.get_end_time() + params.data.render.release_tail
        if limit is not None:
            seconds = min(seconds, limit)
        samples = max(int(round(seconds * rate)), hop)
        roll = roll_for_midi(midi, samples, rate, hop)
        jobs.append(Job("composed", record["id"], midi, roll, samples / rate, None))
    if not jobs:
        raise WavegenError(
            f"nothing to synthesize: no test-split piece with MIDI in {corpus} and no "
            f"composed piece in {composed_dir} "
            "(vocoder.synthesize.test_pieces/composed_pieces)"
        )
    return jobs


def _soundfont(params: Params, job: Job, samples: int) -> tuple[np.ndarray, float]:
    """The FluidSynth render of the whole piece, as the data stage makes it (so it is
    normalised like the true audio), cut to ``samples``; and the seconds rendered."""
    render = params.data.render
    if not any(instrument.notes for instrument in job.midi.instruments):
        return np.zeros(samples, dtype=np.float32), 0.0
    audio = render_midi(
        job.midi,
        sample_rate=params.audio.sample_rate,
        soundfont=render.soundfont,
        release_tail=render.release_tail,
        peak=render.peak,
    )
    return crop_or_pad(torch.from_numpy(audio), samples).numpy(), len(
        audio
    ) / params.audio.sample_rate


@dataclass
class Loaded:
    """What a synthesize stage renders with, and scores by."""

    spec: Any
    model: torch.nn.Module
    device: torch.device
    transcriber: Any
    judge: BasicPitchTranscriber | None
    jobs: list[Job]


def load_for_synthesis(params: Params, args: argparse.Namespace, stage: str) -> Loaded:
    """The family's model, the transcribers and the pieces to render."""
    config = params.vocoder.synthesize
    spec = vocoder_spec(args.family)
    device = choose_device(params.device)
    model = spec.load(args.checkpoint, device)
    transcriber = TRANSCRIBER.load(args.transcriber, device)
    judge: BasicPitchTranscriber | None = None
    if config.judge:
        if basic_pitch_available():
            judge = BasicPitchTranscriber()
        else:
            log.warning("%s: basic-pitch is not installed; no judge's scores", stage)
    jobs = _jobs(params, args.corpus, args.composed)
    log.info(
        "%s: %d test and %d composed pieces on %s",
        stage,
        sum(job.kind == "test" for job in jobs),
        sum(job.kind == "composed" for job in jobs),
        device,
    )
    return Loaded(spec, model, device, transcriber, judge, jobs)


def render(
    params: Params, loaded: Loaded, conditions: list[np.ndarray], progress: bool = True
) -> list[np.ndarray]:
    """``loaded``'s model's audio for each job's frames (the roll, or more), with the
    run's seed and the family's temperature."""
    config = params.vocoder.synthesize
    generator = torch.Generator(device=loaded.device).manual_seed(params.seed)
    return render_pieces(
        loaded.spec,
        loaded.model,
        conditions,
        chunk_frames=config.chunk_frames,
        context_frames=config.context_frames,
        generator=generator,
        temperature=config.temperature_of(loaded.spec.name),
        progress=progress,
    )


def score_and_write(
    params: Params,
    args: argparse.Namespace,
    loaded: Loaded,
    name: str,
    conditions: list[np.ndarray],
    ceilings: dict[str, list[np.ndarray | None]] | None = None,
) -> None:
    """Render every job from its ``conditions``, score the renders beside the reference
    renders, and write audio, pictures, ``metrics.json`` and ``speed.json``; the render
    is the row ``name``. ``ceilings`` are further rows rendered already (a list per row,
    None for a job without one), each written under a folder of its name."""
    out_dir, report_dir, jobs = args.out, args.reports, loaded.jobs
    rate = params.audio.sample_rate
    ceilings = ceilings or {}
    started = time.perf_counter()
    rendered = render(params, loaded, conditions)
    model_seconds = time.perf_counter() - started
    started = time.perf_counter()
    soundfont = [
        _soundfont(params, job, len(audio)) for job, audio in zip(jobs, rendered, strict=True)
    ]
    soundfont_seconds = time.perf_counter() - started
    references = [audio for audio, _ in soundfont]
    audio_seconds = sum(len(audio) for audio in rendered) / rate

    staging = staging_dir(out_dir, f"{params.seed}-{__version__}")
    rows = [name, *ceilings, "soundfont", "sine", "noise"]
    scores: dict[str, dict[str, list[dict[str, float]]]] = {
        "test": {row: [] for row in [*rows, "true_audio"]},
        "composed": {row: [] for row in rows},
    }
    records: list[dict[str, Any]] = []
    for index, (job, audio, reference) in enumerate(zip(jobs, rendered, references, strict=True)):
        seconds = len(audio) / rate
        notes = notes_before(job.midi, seconds)
        sine = additive_render(notes, len(audio), rate, params.data.render.peak)
        noise = noise_render(reference, params.seed + index)
        renders = {name: audio, "soundfont": reference, "sine": sine, "noise": noise}
        for row, audios in ceilings.items():
            ceiling = audios[index]
            if ceiling is not None:
                renders[row] = ceiling
                write_wav(staging / row / f"{job.kind}_{job.id}.wav", ceiling, rate)
        piece_scores = score_renders(
            renders,
            notes,
            job.true_audio,
            loaded.transcriber,
            params.transcription,
            rate,
            loaded.judge,
        )
        for row, entry in piece_scores.items():
            scores[job.kind][row].append(entry)
        write_wav(staging / job.kind / f"{job.id}.wav", audio, rate)
        write_wav(staging / "soundfont" / f"{job.kind}_{job.id}.wav", reference, rate)
        write_wav(staging / "sine" / f"{job.kind}_{job.id}.wav", sine, rate)
        plot_audio_and_midi(
            staging / job.kind / f"{job.id}.png",
            audio,
            rate,
            notes_to_midi(notes),
            f"{name}: {job.id}",
        )
        records.append(
            {
                "id": job.id,
                "kind": job.kind,
                "audio": f"{job.kind}/{job.id}.wav",
                "soundfont": f"soundfont/{job.kind}_{job.id}.wav",
                "sine": f"sine/{job.kind}_{job.id}.wav",
                "seconds": round(seconds, 3),
                "notes": len(notes),
            }
        )
    write_json(staging / "manifest.json", {"family": name, "pieces": records})
    metrics: dict[str, Any] = {
        kind: {row: mean_scores(entries) for row, entries in by_row.items() if entries}
        for kind, by_row in scores.items()
        if any(by_row.values())
    }
    # Wall-clock figures differ from run to run, so they live in a file of their own:
    # everything else the stage writes is the same for the same inputs and seed.
    speed = {
        "real_time_factor": {
            name: audio_seconds / model_seconds,
            "soundfont": sum(seconds for _, seconds in soundfont) / max(soundfont_seconds, 1e-9),
        },
        "device": str(loaded.device),
        "audio_seconds": audio_seconds,
    }
    replace_dir(staging, out_dir)
    first = records[0]
    with atomic_path(report_dir / "example.png") as example:
        shutil.copyfile(out_dir / Path(first["audio"]).with_suffix(".png"), example)
    write_json(report_dir / "metrics.json", metrics)
    write_json(report_dir / "speed.json", speed)
    log.info(
        "%s: %.1f s of audio at %.3gx real time -> %s",
        name,
        audio_seconds,
        audio_seconds / model_seconds,
        out_dir,
    )
