"""Vocoders side by side on the same test pieces, scored by a judge that learnt none of them.

``python -m benchmarks.bench_vocoder_quality --corpus DIR --model LABEL=CHECKPOINT ...
[--pieces 8] [--seconds 10] [--transcriber CHECKPOINT] [--params FILE] --out DIR``

Renders the first ``--seconds`` of the first ``--pieces`` test pieces of a prepared
corpus (sorted by id, as ``synthesize`` takes them) with every trained vocoder given
(any family, any number: one family with and without an option, say), with
FluidSynth and the data stage's soundfont, and with the plain sine render, all in one
run, and scores each against the true audio and the MIDI: basic-pitch's note-onset F1
(the judge: it learnt neither our corpus nor our soundfont), our transcriber's where
one is given, the multi-resolution STFT distance and the log-mel L1 (the same scores
as ``synthesize``, from :func:`~wavegen_core.evaluation.synthesis.score_renders`), and
each vocoder's real-time factor on this machine. Rendering follows
``vocoder.synthesize`` of ``--params`` (chunks, context, temperatures).

Writes ``quality.json`` (per piece and mean) and ``quality.md`` (the table) to
``--out``, and for the first piece a PNG of every render's spectrogram stacked over the
roll. Prints the table.
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
from wavegen_core.audio.render import additive_render, render_midi
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import roll_for_midi
from wavegen_core.evaluation.plots import plot_renders
from wavegen_core.evaluation.synthesis import mean_scores, notes_before, score_renders
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.transcription.onsets_frames import SPEC as TRANSCRIBER
from wavegen_core.models.transcription.transcribers import BasicPitchTranscriber
from wavegen_core.models.vocoders.registry import load_vocoder, render_pieces
from wavegen_core.params import Params, load_params
from wavegen_core.progress import progress_bar

REFERENCES = ("FluidSynth", "sine")
COLUMNS = {
    "judge_onset_f1": "judge onset F1",
    "onset_f1": "ours onset F1",
    "mr_stft": "MR-STFT",
    "mel_l1": "log-mel L1",
}


def _label_and_path(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--model takes LABEL=CHECKPOINT, got {text!r}")
    return label, Path(path)


def _pieces(corpus: Path, count: int, seconds: float, rate: int) -> list[dict[str, Any]]:
    test = sorted(
        (p for p in read_manifest(corpus) if p.split == "test" and p.midi is not None),
        key=lambda p: p.id,
    )[:count]
    if not test:
        raise SystemExit(f"{corpus}: no test piece with MIDI")
    pieces = []
    for piece in test:
        assert piece.midi is not None
        audio = load_audio(corpus / piece.audio, rate)[: int(round(seconds * rate))]
        midi = load_midi(corpus / piece.midi)
        pieces.append({"id": piece.id, "audio": audio, "midi": midi})
    return pieces


def _render_model(
    params: Params, path: Path, pieces: list[dict[str, Any]], rate: int
) -> tuple[list[np.ndarray], float]:
    """Each piece rendered by the vocoder at ``path`` (as long as its true audio), and
    the real-time factor."""
    loaded = load_vocoder(path, "cpu")
    if loaded.sample_rate != rate:
        raise SystemExit(f"{path}: trained at {loaded.sample_rate} Hz, the corpus is {rate} Hz")
    rolls = [roll_for_midi(p["midi"], len(p["audio"]), rate, loaded.hop_length) for p in pieces]
    synthesize = params.vocoder.synthesize
    family = loaded.spec.name
    started = time.perf_counter()
    audio = render_pieces(
        loaded.spec,
        loaded.model,
        rolls,
        chunk_frames=synthesize.chunk_frames,
        context_frames=synthesize.context_frames,
        generator=torch.Generator().manual_seed(params.seed),
        temperature=synthesize.temperature_of(family),
        progress=False,
    )
    seconds = time.perf_counter() - started
    cut = [rendered[: len(p["audio"])] for rendered, p in zip(audio, pieces, strict=True)]
    return cut, sum(len(a) for a in cut) / rate / seconds


def _soundfont(params: Params, piece: dict[str, Any], rate: int) -> np.ndarray:
    render = params.data.render
    audio = render_midi(
        piece["midi"],
        sample_rate=rate,
        soundfont=render.soundfont,
        release_tail=render.release_tail,
        peak=render.peak,
    )[: len(piece["audio"])]
    return np.pad(audio, (0, len(piece["audio"]) - len(audio)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = load_params(args.params) if args.params else Params()
    rate = params.audio.sample_rate
    pieces = _pieces(args.corpus, args.pieces, args.seconds, rate)
    renders: dict[str, list[np.ndarray]] = {}
    speed: dict[str, float] = {}
    for label, path in args.model:
        renders[label], speed[label] = _render_model(params, path, pieces, rate)
    renders["FluidSynth"] = [_soundfont(params, piece, rate) for piece in pieces]
    transcriber = TRANSCRIBER.load(args.transcriber, "cpu") if args.transcriber else None
    judge = BasicPitchTranscriber()
    per_piece = []
    bar = progress_bar(total=len(pieces), desc="score", unit="piece")
    for index, piece in enumerate(pieces):
        seconds = len(piece["audio"]) / rate
        notes = notes_before(piece["midi"], seconds)
        named = {label: audio[index] for label, audio in renders.items()}
        named["sine"] = additive_render(notes, len(piece["audio"]), rate, params.data.render.peak)
        scores = score_renders(
            named, notes, piece["audio"], transcriber, params.transcription, rate, judge
        )
        per_piece.append({"id": piece["id"], **scores})
        if index == 0:
            args.out.mkdir(parents=True, exist_ok=True)
            plot_renders(
                args.out / f"vocoders-{piece['id']}.png",
                {"true audio": piece["audio"], **named},
                rate,
                notes_to_midi(notes),
                f"{piece['id']}: first {seconds:.0f} s",
            )
        bar.update(1)
    bar.close()
    labels = [label for label, _ in args.model] + list(REFERENCES) + ["true_audio"]
    means = {label: mean_scores([piece[label] for piece in per_piece]) for label in labels}
    return {
        "pieces": [piece["id"] for piece in pieces],
        "seconds": args.seconds,
        "real_time_factor": speed,
        "threads": torch.get_num_threads(),
        "mean": means,
        "per_piece": per_piece,
    }


def table(result: dict[str, Any]) -> str:
    means = result["mean"]
    columns = [c for c in COLUMNS if any(c in scores for scores in means.values())]
    lines = [
        "| rendered by | " + " | ".join(COLUMNS[c] for c in columns) + " | × real time |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for label, scores in means.items():
        cells = [f"{scores[c]:.3f}" if c in scores else "—" for c in columns]
        rtf = result["real_time_factor"].get(label)
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {'—' if rtf is None else f'{rtf:.1f}'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vocoder_quality")
    parser.add_argument("--corpus", type=Path, required=True, help="a prepared corpus")
    parser.add_argument(
        "--model",
        type=_label_and_path,
        action="append",
        required=True,
        help="LABEL=CHECKPOINT of a trained vocoder (repeat for more)",
    )
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--transcriber", type=Path, help="our transcriber's checkpoint, if any")
    parser.add_argument("--params", type=Path, help="params.yaml (synthesis settings, soundfont)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args)
    (args.out / "quality.json").write_text(json.dumps(result, indent=2))
    text = table(result)
    (args.out / "quality.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
