"""The overfit check: can a vocoder family learn one short excerpt well enough that its
samples of that excerpt are heard as the right notes?

``python -m benchmarks.bench_overfit --corpus DIR --family wavenet [--family flow]
[--profile cpu] [--seconds 4] [--steps N] [--score-every K] [--learning-rate LR]
[--temperature T ...] --out DIR``

Takes the first ``--seconds`` of the first validation piece of a prepared corpus (its
audio and the notes that start in it), trains the family at the profile's size on that
excerpt alone (random excerpts of the family's training length, drawn from it, as
``train_vocoder`` draws them from a corpus) for ``--steps`` steps, then renders the
excerpt from its roll and scores the renders against the excerpt's MIDI and audio:
basic-pitch's note-onset F1 (the judge) and the multi-resolution STFT distance, at
each temperature asked for; with ``--score-every``, also every K steps, for the curve
of teacher-forced NLL against what is heard. A family that passes (judge onset F1 >= 0.6, the truth
itself scoring the ceiling beside it) can render what it has learnt; one that fails
with its teacher-forced loss flat has a bug in its conditioning or its sampler, not
a budget problem.

Also measured: training throughput (audio samples a second, and the steps 30 minutes
buy), the receptive field against the excerpt length, and whether the loss flattened
(the mean of the last tenth of the logged losses within ``FLAT_NATS`` of the tenth
before it). Writes ``overfit.json`` and, per family, the loss curves, the renders as
WAV and a PNG of the truth's and the renders' spectrograms over the roll under
``--out/<family>/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavegen_core.audio.io import load_audio, write_wav
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.pairs import pair_piece
from wavegen_core.evaluation.plots import plot_renders
from wavegen_core.evaluation.synthesis import notes_before, score_renders
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.vocoders.registry import load_vocoder, render_pieces, vocoder_spec
from wavegen_core.params import Params, load_params
from wavegen_core.profiles import params_under_profile
from wavegen_core.training.metrics import read_curves
from wavegen_core.training.vocoder import train_vocoder

FAMILIES = ("wavenet", "flow")
# The loss has flattened when its last tenth moves less than this (nats per sample).
FLAT_NATS = 0.02
# What a family must reach on the excerpt it learnt: the bar.
PASS_ONSET_F1 = 0.6
HALF_HOUR = 30 * 60


def excerpt(corpus: Path, seconds: float, rate: int) -> dict[str, Any]:
    """The first ``seconds`` of the corpus's first validation piece with MIDI."""
    pieces = sorted(
        (p for p in read_manifest(corpus) if p.split == "validation" and p.midi is not None),
        key=lambda p: p.id,
    )
    if not pieces:
        raise SystemExit(f"{corpus}: no validation piece with MIDI")
    piece = pieces[0]
    assert piece.midi is not None
    audio = load_audio(corpus / piece.audio, rate)[: int(round(seconds * rate))]
    notes = notes_before(load_midi(corpus / piece.midi), len(audio) / rate)
    return {"id": piece.id, "audio": audio, "notes": notes}


def receptive_field(family: str, model: torch.nn.Module) -> int:
    """Samples one output sample depends on: the WaveNet's past; for the flow, the
    samples that every coupling of the chain together can reach, on both sides."""
    if family == "wavenet":
        return int(model.receptive_field)  # type: ignore[arg-type]
    steps = sum(coupling.stack.receptive_field - 1 for coupling in model.couplings)  # type: ignore[union-attr]
    return (steps + 1) * int(model.groups)  # type: ignore[arg-type]


def flattened(values: list[float]) -> bool:
    """Whether the last tenth of a curve's values moved less than ``FLAT_NATS``."""
    tenth = max(len(values) // 10, 1)
    if len(values) < 2 * tenth:
        return False
    last, before = values[-tenth:], values[-2 * tenth : -tenth]
    return bool(abs(np.mean(last) - np.mean(before)) < FLAT_NATS)


def _section(params: Params, family: str, steps: int, learning_rate: float | None) -> Any:
    """The family's params section trained for ``steps`` steps, checkpointed at the end."""
    section = params.vocoder.section(family)
    train: dict[str, float] = {"steps": steps, "checkpoint_every": steps, "eval_every": steps}
    train["log_every"] = max(1, min(section.train.log_every, steps // 20))
    if learning_rate is not None:
        train["learning_rate"] = learning_rate
    return section.model_copy(update={"train": section.train.model_copy(update=train)})


def _scores(
    family: str,
    params: Params,
    model: torch.nn.Module,
    pair: Any,
    piece: dict[str, Any],
    temperatures: list[float],
    judge: Any,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """The excerpt rendered from its roll at each temperature, and every render's scores."""
    rate = params.audio.sample_rate
    renders = {}
    for temperature in temperatures:
        [audio] = render_pieces(
            vocoder_spec(family),
            model,
            [np.asarray(pair.roll, dtype=np.float32)],
            chunk_frames=params.vocoder.synthesize.chunk_frames,
            context_frames=params.vocoder.synthesize.context_frames,
            generator=torch.Generator().manual_seed(params.seed),
            temperature=temperature,
            progress=False,
        )
        renders[f"{family} T={temperature:g}"] = audio[: len(piece["audio"])]
    scores = score_renders(
        renders, piece["notes"], piece["audio"], None, params.transcription, rate, judge
    )
    return renders, scores


def overfit(
    family: str,
    params: Params,
    piece: dict[str, Any],
    *,
    steps: int,
    score_every: int | None,
    learning_rate: float | None,
    temperatures: list[float],
    out: Path,
    judge: Any,
) -> dict[str, Any]:
    """Train ``family`` on the excerpt from its initial weights; every ``score_every``
    steps (and at the end) render the excerpt at each temperature and score the renders
    beside the teacher-forced NLL of that moment."""
    rate = params.audio.sample_rate
    hop = params.vocoder.conditioning.hop_length
    pair = pair_piece(piece["id"], piece["audio"], notes_to_midi(piece["notes"]), rate, hop)
    folder = out / family
    checkpoint = folder / "checkpoint.pt"
    checkpoint.unlink(missing_ok=True)  # the check always starts from the initial weights
    stops = list(range(score_every, steps, score_every)) if score_every else []
    curve: list[dict[str, Any]] = []
    seconds = 0.0
    for stop in [*stops, steps]:
        section = _section(params, family, stop, learning_rate)
        vocoder = params.vocoder.model_copy(update={family: section})
        started = time.perf_counter()
        result = train_vocoder(
            family,
            vocoder,
            [pair],
            [pair],
            sample_rate=rate,
            seed=params.seed,
            device=torch.device("cpu"),
            checkpoint_path=checkpoint,
            metrics_dir=folder / "training",
        )
        seconds += time.perf_counter() - started
        model = load_vocoder(checkpoint).model
        renders, scores = _scores(family, params, model, pair, piece, temperatures, judge)
        curve.append({"step": stop, "teacher_forced_nll": result.metrics.get("eval/loss")})
        for label, score in scores.items():
            curve[-1][label] = {k: score[k] for k in ("judge_onset_f1", "mr_stft") if k in score}
    for label, audio in renders.items():
        write_wav(folder / f"{label.replace(' ', '_')}.wav", audio, rate)
    plot_renders(
        folder / "renders.png",
        {"true audio": piece["audio"], **renders},
        rate,
        notes_to_midi(piece["notes"]),
        f"{family} after {steps} steps on {len(piece['audio']) / rate:g} s of {piece['id']}",
    )
    _, losses = read_curves(folder / "training")["train/loss"]
    samples_per_step = section.train.batch_size * section.segment_frames * hop
    best = max(scores[label]["judge_onset_f1"] for label in renders)
    return {
        "steps": steps,
        "learning_rate": section.train.learning_rate,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "teacher_forced_nll": result.metrics.get("eval/loss"),
        "flattened": flattened(losses),
        "train_seconds": round(seconds, 1),
        "samples_per_second": round(samples_per_step * steps / seconds),
        "steps_in_30_minutes": int(HALF_HOUR * steps / seconds),
        "excerpt_samples": section.segment_frames * hop,
        "receptive_field": receptive_field(family, model),
        "threads": torch.get_num_threads(),
        "scores": scores,
        "curve": curve,
        "passes": best >= PASS_ONSET_F1,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from wavegen_core.models.transcription.transcribers import BasicPitchTranscriber

    base = load_params(args.params) if args.params else Params()
    params = params_under_profile(args.profile, base) if args.profile else base
    piece = excerpt(args.corpus, args.seconds, params.audio.sample_rate)
    judge = BasicPitchTranscriber()
    families = {}
    for family in args.family:
        temperatures = args.temperature or [params.vocoder.synthesize.temperature_of(family)]
        families[family] = overfit(
            family,
            params,
            piece,
            steps=args.steps,
            score_every=args.score_every,
            learning_rate=args.learning_rate,
            temperatures=temperatures,
            out=args.out,
            judge=judge,
        )
    return {
        "piece": piece["id"],
        "seconds": len(piece["audio"]) / params.audio.sample_rate,
        "profile": args.profile,
        "families": families,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| family | steps | loss first → last | flat | samples/s | RF / excerpt | render "
        "| judge F1 | MR-STFT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for family, row in result["families"].items():
        truth = row["scores"]["true_audio"]["judge_onset_f1"]
        for label, scores in row["scores"].items():
            if label == "true_audio":
                continue
            lines.append(
                f"| {family} | {row['steps']} | {row['first_loss']:.3f} → {row['last_loss']:.3f} "
                f"| {'yes' if row['flattened'] else 'no'} | {row['samples_per_second']} "
                f"| {row['receptive_field']} / {row['excerpt_samples']} | {label} "
                f"| {scores['judge_onset_f1']:.3f} (truth {truth:.3f}) | {scores['mr_stft']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_overfit")
    parser.add_argument("--corpus", type=Path, required=True, help="a prepared corpus")
    parser.add_argument("--family", action="append", choices=FAMILIES, required=True)
    parser.add_argument("--profile", help="profile the sizes come from (default: params')")
    parser.add_argument("--params", type=Path, help="params file (default: the defaults)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument(
        "--score-every", type=int, help="also render and score every N steps (the curve)"
    )
    parser.add_argument("--temperature", type=float, action="append")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overfit.json").write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
