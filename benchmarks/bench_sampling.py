"""Sampling a trained vocoder on validation pieces: the judge and the spectral distance
at several temperatures, to choose the temperature on material that is not the test
split.

``python -m benchmarks.bench_sampling --corpus DIR --checkpoint FILE
[--mel-source FILE] [--pieces 4] [--seconds 4] [--temperature T ...] [--split S]
[--params FILE] --out DIR``

Renders the first ``--seconds`` of the first ``--pieces`` validation pieces (by id) of a
prepared corpus with the checkpoint's family at each temperature, and scores every
render against the piece's MIDI and true audio: basic-pitch's note-onset F1 (the judge,
which learnt neither the corpus nor its soundfont) and the multi-resolution STFT
distance. A model conditioned on log-mel frames (``train_vocoder_mel``) renders from the
mels of ``--mel-source``'s render of the same MIDI (DDSP's, as ``synthesize_mel``) and
from the true audio's mels (the ceiling). The temperature chosen is the one whose
renders (from the source's mels, for a mel model) the judge scores highest, the lower
MR-STFT breaking a tie. ``--split test`` scores the test split instead: to report the
temperature chosen on validation, never to choose.

Writes ``sampling.json`` (every row's means, the chosen temperature), the first piece's
renders as WAV and a PNG of their spectrograms over the roll under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavegen_core.audio.io import load_audio, write_wav
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import roll_for_midi
from wavegen_core.evaluation.plots import plot_renders
from wavegen_core.evaluation.synthesis import mean_scores, notes_before, score_renders
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.transcription.transcribers import BasicPitchTranscriber
from wavegen_core.models.vocoders.conditioning import MelFrames, check_mel_source
from wavegen_core.models.vocoders.registry import LoadedVocoder, load_vocoder, render_pieces
from wavegen_core.params import Params, load_params

DEFAULT_TEMPERATURES = {"wavenet": [0.7, 0.85, 1.0], "flow": [0.0, 0.3, 0.6]}


def split_pieces(
    corpus: Path, count: int, seconds: float, rate: int, hop: int, split: str = "validation"
) -> list[dict]:
    """The first ``seconds`` of the first ``count`` pieces of ``split`` with MIDI: id,
    audio (a whole number of frames), roll and the notes that start in it."""
    pieces = sorted(
        (p for p in read_manifest(corpus) if p.split == split and p.midi is not None),
        key=lambda p: p.id,
    )[:count]
    if not pieces:
        raise SystemExit(f"{corpus}: no {split} piece with MIDI")
    chosen = []
    for piece in pieces:
        assert piece.midi is not None
        audio = load_audio(corpus / piece.audio, rate)[: int(round(seconds * rate))]
        audio = audio[: len(audio) // hop * hop]
        midi = load_midi(corpus / piece.midi)
        roll = roll_for_midi(midi, len(audio), rate, hop)
        notes = notes_before(midi, len(audio) / rate)
        chosen.append({"id": piece.id, "audio": audio, "roll": roll, "notes": notes})
    return chosen


def _render(
    vocoder: LoadedVocoder,
    conditions: list[np.ndarray],
    params: Params,
    temperature: float | None,
) -> list[np.ndarray]:
    return render_pieces(
        vocoder.spec,
        vocoder.model,
        conditions,
        chunk_frames=params.vocoder.synthesize.chunk_frames,
        context_frames=params.vocoder.synthesize.context_frames,
        generator=torch.Generator().manual_seed(params.seed),
        temperature=temperature,
        progress=False,
    )


def conditionings(
    vocoder: LoadedVocoder, pieces: list[dict], mel_source: Path | None, params: Params
) -> dict[str, list[np.ndarray]]:
    """What the model renders each piece from, by name: the roll; or, for a mel model, the
    mels of the source's render (``source_mel``) and of the true audio (``true_mel``)."""
    frames = getattr(getattr(vocoder.model, "conditioning", None), "mel_frames", None)
    if not isinstance(frames, MelFrames):
        return {"roll": [piece["roll"] for piece in pieces]}
    if mel_source is None:
        raise SystemExit("a mel-conditioned model needs --mel-source (DDSP's checkpoint)")
    source = load_vocoder(mel_source)
    check_mel_source(
        source.sample_rate,
        source.hop_length,
        vocoder.sample_rate,
        vocoder.hop_length,
        f"{source.spec.name} ({mel_source})",
        vocoder.spec.name,
    )
    temperature = params.vocoder.synthesize.temperature_of(source.spec.name)
    drawn = _render(source, [piece["roll"] for piece in pieces], params, temperature)
    return {
        "source_mel": [
            frames.attach_to_piece(piece["roll"], audio)
            for piece, audio in zip(pieces, drawn, strict=True)
        ],
        "true_mel": [frames.attach_to_piece(piece["roll"], piece["audio"]) for piece in pieces],
    }


def choose(rows: list[dict[str, Any]]) -> float:
    """The temperature the judge scores highest on the deciding conditioning (the
    source's mels for a mel model, else the roll); the lower MR-STFT breaks a tie."""
    deciding = [row for row in rows if row["conditioning"] in ("roll", "source_mel")]
    best = max(deciding, key=lambda row: (row["judge_onset_f1"], -row["mr_stft"]))
    return float(best["temperature"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = load_params(args.params)
    vocoder = load_vocoder(args.checkpoint)
    family = vocoder.spec.name
    temperatures = args.temperature or DEFAULT_TEMPERATURES.get(family, [1.0])
    pieces = split_pieces(
        args.corpus, args.pieces, args.seconds, vocoder.sample_rate, vocoder.hop_length, args.split
    )
    judge = BasicPitchTranscriber()
    rows: list[dict[str, Any]] = []
    example: dict[str, np.ndarray] = {"truth": pieces[0]["audio"]}
    for name, conditions in conditionings(vocoder, pieces, args.mel_source, params).items():
        for temperature in temperatures:
            rendered = _render(vocoder, conditions, params, temperature)
            per_piece = []
            for piece, audio in zip(pieces, rendered, strict=True):
                label = f"{name} T={temperature:g}"
                scores = score_renders(
                    {label: audio},
                    piece["notes"],
                    piece["audio"],
                    None,
                    params.transcription,
                    vocoder.sample_rate,
                    judge,
                )
                per_piece.append(scores[label])
            example[f"{name} T={temperature:g}"] = rendered[0]
            means = mean_scores(per_piece)
            rows.append({"conditioning": name, "temperature": temperature, **means})
            print(
                f"{family} {name} T={temperature:g}: judge {means['judge_onset_f1']:.3f} "
                f"MR-STFT {means['mr_stft']:.2f}",
                flush=True,
            )
    truth = [
        score_renders(
            {}, p["notes"], p["audio"], None, params.transcription, vocoder.sample_rate, judge
        )["true_audio"]
        for p in pieces
    ]
    result = {
        "family": family,
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "pieces": [piece["id"] for piece in pieces],
        "seconds": args.seconds,
        "truth": mean_scores(truth),
        "rows": rows,
        "chosen_temperature": choose(rows),
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for label, audio in example.items():
        write_wav(
            out / f"{label.replace(' ', '_').replace('=', '')}.wav", audio, vocoder.sample_rate
        )
    plot_renders(
        out / "renders.png",
        example,
        vocoder.sample_rate,
        notes_to_midi(pieces[0]["notes"]),
        f"{family}: {pieces[0]['id']}, first {args.seconds:g} s",
    )
    (out / "sampling.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--mel-source", type=Path, default=None)
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument(
        "--split",
        default="validation",
        help="validation (to choose on) or test (to report the chosen temperature, only)",
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--temperature", type=float, action="append")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    result = run(parser.parse_args(argv))
    print(
        f"chosen temperature: {result['chosen_temperature']:g} "
        f"(truth: judge {result['truth']['judge_onset_f1']:.3f})"
    )


if __name__ == "__main__":
    main()
