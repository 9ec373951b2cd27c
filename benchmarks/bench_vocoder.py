"""Vocoders: how fast they generate audio on the CPU.

``python -m benchmarks.bench_vocoder wavenet``: samples per second that
``WaveNetVocoder.generate`` draws, for untrained models (torch seed 0; the speed
depends on the architecture, not on the weights), mu-law output unless a row says
otherwise, conditioned on a random sparse piano roll, with the default conditioning
(hop 256, 32 channels). Every timed run comes after an untimed one-frame run of the
same model and path (which compiles numba's loop and loads torch's kernels) and uses
``torch.Generator().manual_seed(0)``; its time includes the conditioning network and
the per-block conditioning projections. Rows:

* ``receptive field``: the tiny profile's channels (residual 32, gate 64, skip 64,
  kernel 2) with 10 layers in one cycle (receptive field 1,025 samples) and 12 layers
  in one cycle (4,097), batch 1. ``cached`` is the queue path (``method="queue"``, the
  eager per-layer queues of Paine et al. 2016) over 2,048 samples. ``naive`` is what
  ``generate_naive`` does for each sample once its window is full (the network over
  the last ``receptive_field`` inputs and their conditioning, then the draw), timed
  over 16 such samples: a whole naive run would spend most of its time on the first
  ``receptive_field`` samples, whose windows are shorter. ``speedup`` = cached / naive.
* ``single stream``: the 20-layer model (2 cycles of 10, residual 64, gate 128, skip
  64), batch 1, over 16,384 samples (4,096 for the queue path), for each of the
  three paths (``queue``, ``fused``: eager torch on rearranged weights, ``numba``:
  the fused loop compiled), and ``real_time`` = samples per second / 16,000 (above 1
  is faster than real time at 16 kHz).
* ``batch 8``: the same model and paths, 8 pieces at once, over 4,096 samples per
  piece (1,024 for the queue path); ``samples_per_s`` counts the samples of all 8.

``python -m benchmarks.bench_vocoder families``: the real-time factor (seconds of
audio per wall-clock second) of each family rendering 10 s of a Bach chorale's
conditioning roll with :func:`render_pieces` (what ``synthesize`` and ``wavegen
synthesize`` call: the WaveNet's default path, the flow and the GAN in chunks of
512 frames with 16 of context), batch 1, for untrained models (torch seed 0) at the
sizes of the tiny profile (the shipped params) and of the cpu profile, all in one
run, each after an untimed 1 s render of the same model; every family that takes the
harmonic excitation with it and without (``vocoder.conditioning.excitation``; with it,
each chunk also gets the frames of history the excitation reads). FluidSynth's render
of the same 10 s of MIDI (the soundfont reference) is timed the same way.

``python -m benchmarks.bench_vocoder pictures --repo DIR --out DIR``: after `dvc repro`
in DIR, one PNG per test piece: the true audio, every family's render, FluidSynth's
and the sine render as spectrograms, stacked over the roll.

Torch uses its default thread count (written into every row); numba's loop runs on
one thread. Other people may be using the CPU at the same time: figures can vary by
10 to 20 % from run to run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.evaluation.plots import plot_renders
from wavegen_core.evaluation.synthesis import notes_before
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.transcription.onsets_frames import parameter_count
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_families, vocoder_spec
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig
from wavegen_core.models.vocoders.wavenet.generation import compiled_block_loop
from wavegen_core.models.vocoders.wavenet.model import WaveNetVocoder
from wavegen_core.params import load_params
from wavegen_core.profiles import params_under_profile

SAMPLE_RATE = 16000
CONDITIONING = ConditioningConfig()
# (layers, dilation_cycle): receptive fields of 1,025 and 4,097 samples.
RECEPTIVE_FIELDS = ((10, 10), (12, 12))
CACHED_SAMPLES = 2048
NAIVE_SAMPLES = 16
# The single-stream model: 20 layers, 64 residual channels.
STREAM_MODEL = {
    "layers": 20,
    "dilation_cycle": 10,
    "residual_channels": 64,
    "gate_channels": 128,
    "skip_channels": 64,
}
STREAM_SAMPLES = {"queue": 4096, "fused": 16384, "numba": 16384}
BATCH = 8
BATCH_SAMPLES = {"queue": 1024, "fused": 4096, "numba": 4096}


def _model(**overrides: Any) -> WaveNetVocoder:
    torch.manual_seed(0)
    config = WaveNetConfig(**overrides)
    return WaveNetVocoder(config, CONDITIONING, SAMPLE_RATE).eval()


def _roll(batch: int, samples: int) -> torch.Tensor:
    frames = -(-samples // CONDITIONING.hop_length)
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(batch, ROLL_CHANNELS, frames, generator=generator) < 0.02).float()


def _generation_rate(model: WaveNetVocoder, method: str, batch: int, samples: int) -> float:
    """Samples per second (all pieces together) of ``generate`` with ``method``."""
    roll = _roll(batch, samples)
    model.generate(roll[..., :1], method=method)  # warm-up
    start = time.perf_counter()
    audio = model.generate(roll, generator=torch.Generator().manual_seed(0), method=method)
    return audio.numel() / (time.perf_counter() - start)


@torch.no_grad()
def _naive_rate(model: WaveNetVocoder, samples: int) -> float:
    """Samples per second of ``generate_naive``'s step with a full window."""
    window = model.receptive_field
    roll = _roll(1, window)
    cond = model.conditioning(roll)[..., :window]
    previous = model.targets(torch.rand(1, window) * 0.2 - 0.1)
    uniforms = torch.rand(samples + 1, 1, 2, dtype=torch.float64)
    temperature = 1.0
    model.draw(model.network(model.input_features(previous), cond)[..., -1], uniforms[0], 1.0)
    start = time.perf_counter()
    for step in range(samples):
        output = model.network(model.input_features(previous), cond)[..., -1]
        model.draw(output, uniforms[step + 1], temperature)
    return samples / (time.perf_counter() - start)


def _methods() -> list[str]:
    return ["queue", "fused"] + (["numba"] if compiled_block_loop() is not None else [])


def receptive_field_rows() -> list[dict[str, Any]]:
    rows = []
    for layers, cycle in RECEPTIVE_FIELDS:
        model = _model(layers=layers, dilation_cycle=cycle)
        cached = _generation_rate(model, "queue", 1, CACHED_SAMPLES)
        naive = _naive_rate(model, NAIVE_SAMPLES)
        rows.append(
            {
                "name": f"wavenet receptive field {model.receptive_field}: cached vs naive",
                "layers": layers,
                "receptive_field": model.receptive_field,
                "cached_samples_per_s": round(cached, 1),
                "naive_samples_per_s": round(naive, 2),
                "speedup": round(cached / naive, 1),
                "threads": torch.get_num_threads(),
            }
        )
    return rows


def stream_rows(batch: int) -> list[dict[str, Any]]:
    model = _model(**STREAM_MODEL)
    lengths = STREAM_SAMPLES if batch == 1 else BATCH_SAMPLES
    label = "single stream" if batch == 1 else f"batch {batch}"
    cases = [(method, "mu_law") for method in _methods()]
    if batch == 1 and "numba" in _methods():
        cases.append(("numba", "logistic_mixture"))
    rows = []
    for method, output in cases:
        if output != model.config.output:
            model = _model(**STREAM_MODEL, output=output)
        rate = _generation_rate(model, method, batch, lengths[method])
        rows.append(
            {
                "name": f"wavenet 20x64 {label}, {method}"
                + ("" if output == "mu_law" else f", {output}"),
                "batch": batch,
                "receptive_field": model.receptive_field,
                "samples_per_s": round(rate),
                "real_time": round(rate / SAMPLE_RATE, 2),
                "threads": torch.get_num_threads(),
            }
        )
    return rows


FAMILY_SECONDS = 10.0


def _chorale_roll(seconds: float, hop_length: int) -> tuple[np.ndarray, Any]:
    from wavegen_core.data.pairs import roll_for_midi
    from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi

    midi = chorale_to_midi(chorale_ids()[0], ChoralesConfig(), seed=0)
    samples = int(seconds * SAMPLE_RATE)
    return roll_for_midi(midi, samples, SAMPLE_RATE, hop_length), midi


def run_families() -> list[dict[str, Any]]:
    """Each family's real-time factor at the tiny and the cpu profile's sizes, and
    FluidSynth's."""
    rows = []
    for profile in ("tiny", "cpu"):
        vocoder = params_under_profile(profile).vocoder
        roll, _ = _chorale_roll(FAMILY_SECONDS, vocoder.conditioning.hop_length)
        warm_up = roll[:, : int(SAMPLE_RATE / vocoder.conditioning.hop_length)]
        for family in vocoder_families():
            spec = vocoder_spec(family)
            section = vocoder.section(family)
            variants = {"": vocoder.conditioning}
            if type(section).uses_excitation:
                variants = {
                    f", {excitation} excitation": vocoder.conditioning.model_copy(
                        update={"excitation": excitation}
                    )
                    for excitation in ("none", "harmonic")
                }
            for suffix, conditioning in variants.items():
                torch.manual_seed(0)
                saved = spec.checkpoint_config(section, conditioning, SAMPLE_RATE, seed=0)
                model = spec.build(saved).eval()  # everything trained, as the table counts
                draw = dict(chunk_frames=512, context_frames=16, progress=False)
                render_pieces(spec, model, [warm_up], **draw)
                start = time.perf_counter()
                (audio,) = render_pieces(
                    spec, model, [roll], generator=torch.Generator().manual_seed(0), **draw
                )
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "name": f"vocoder {family}{suffix} ({profile} profile): real-time factor",
                        "parameters": parameter_count(model),
                        "audio_s": round(len(audio) / SAMPLE_RATE, 2),
                        "wall_s": round(seconds, 3),
                        "real_time_factor": round(len(audio) / SAMPLE_RATE / seconds, 3),
                        "threads": torch.get_num_threads(),
                    }
                )
    rows.append(_soundfont_row())
    return rows


def _soundfont_row() -> dict[str, Any]:
    from wavegen_core.audio.render import RenderConfig, render_midi

    _, midi = _chorale_roll(FAMILY_SECONDS, 256)
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < FAMILY_SECONDS]
    render = RenderConfig()
    draw = dict(sample_rate=SAMPLE_RATE, soundfont=render.soundfont, peak=render.peak)
    render_midi(midi, release_tail=0.0, **draw)  # warm-up: loads the soundfont
    start = time.perf_counter()
    audio = render_midi(midi, release_tail=0.0, **draw)
    seconds = time.perf_counter() - start
    return {
        "name": "soundfont reference (FluidSynth): real-time factor",
        "audio_s": round(len(audio) / SAMPLE_RATE, 2),
        "wall_s": round(seconds, 3),
        "real_time_factor": round(len(audio) / SAMPLE_RATE / seconds, 1),
    }


def run_wavenet() -> list[dict[str, Any]]:
    """The WaveNet rows: receptive fields, single stream, batch 8."""
    return receptive_field_rows() + stream_rows(1) + stream_rows(BATCH)


def run() -> list[dict[str, Any]]:
    """Every vocoder row, for ``python -m benchmarks``."""
    return run_wavenet() + run_families()


def _print(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        figures = ", ".join(f"{key}={value}" for key, value in row.items() if key != "name")
        print(f"{row['name']:<58} {figures}")


def side_by_side(repo: Path, out: Path) -> list[Path]:
    """For each test piece `synthesize` rendered in ``repo`` (a workspace after `dvc
    repro`), one PNG of the true audio, every family's render, FluidSynth's and the
    sine render, stacked over the roll: what each family makes of the same notes."""
    params = load_params(repo / "params.yaml")
    rate = params.audio.sample_rate
    manifests = {
        family: json.loads((repo / "data/synthesized" / family / "manifest.json").read_text())
        for family in params.vocoder.families
        if (repo / "data/synthesized" / family / "manifest.json").is_file()
    }
    if not manifests:
        raise SystemExit(f"{repo}: no data/synthesized/<family>/manifest.json; run dvc repro")
    first = next(iter(manifests))
    corpus = repo / "data/prepared"
    pieces = {p.id: p for p in read_manifest(corpus)}
    written = []
    for record in manifests[first]["pieces"]:
        if record["kind"] != "test":
            continue
        piece = pieces[record["id"]]
        family_dir = repo / "data/synthesized" / first
        length = len(load_audio(family_dir / record["audio"], rate))
        renders = {"true audio": load_audio(corpus / piece.audio, rate)[:length]}
        for family, manifest in manifests.items():
            entry = next(p for p in manifest["pieces"] if p["id"] == record["id"])
            renders[family] = load_audio(repo / "data/synthesized" / family / entry["audio"], rate)
        renders["FluidSynth"] = load_audio(family_dir / record["soundfont"], rate)
        renders["sine"] = load_audio(family_dir / record["sine"], rate)
        assert piece.midi is not None
        midi = notes_to_midi(notes_before(load_midi(corpus / piece.midi), length / rate))
        path = out / f"vocoders-{record['id']}.png"
        plot_renders(path, renders, rate, midi, f"{record['id']}: every family and the references")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vocoder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("wavenet", help="WaveNet generation speed: cached, naive, fused")
    commands.add_parser("families", help="real-time factor of every family, and FluidSynth's")
    pictures = commands.add_parser(
        "pictures", help="spectrograms of every family's render of each test piece, stacked"
    )
    pictures.add_argument(
        "--repo", type=Path, default=Path("."), help="a workspace after dvc repro"
    )
    pictures.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go")
    args = parser.parse_args(argv)
    if args.command == "pictures":
        for path in side_by_side(args.repo, args.out):
            print(path)
        return
    _print(run_wavenet() if args.command == "wavenet" else run_families())


if __name__ == "__main__":
    main()
