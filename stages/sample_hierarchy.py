"""Stage `sample_hierarchy`: audio from the learnt hierarchy, and test audio through it.

`python -m stages.sample_hierarchy --audio DIR --tiers DIR --prior FILE --out DIR
--reports DIR` (`--tiers` holds tier k's checkpoint at `<k>/checkpoint.pt`), on the
top-level `device`:

* **samples**: `vqvae.sample.samples` pieces of `seconds`: the prior draws the top
  tier's codes, then each tier's decoder turns them into the codes of the tier below,
  down to tier 1's decoder and the waveform. `samples/<i>.wav` under `--out` and a
  `<i>.png` with the codes of every tier over time above the spectrogram.
* **reconstructions**: test pieces (cut to `reconstruct_seconds`) encoded up to tier k
  and decoded back down, for every k: `reconstructions/tier<k>/<id>.wav` under `--out`
  (and `original/<id>.wav`). Their multi-resolution STFT distance and log-mel L1 to the
  original, per tier, are `metrics.json` under `--reports`, with each tier's
  bitrate; `speed.json` holds the sampling speed (seconds of audio per wall-clock
  second), kept apart because it is the one output that varies by run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stages._common import run_stage
from wavegen_core.audio.io import load_audio, write_wav
from wavegen_core.audio.spectral import evaluation_mel, mel_l1, multi_resolution_stft
from wavegen_core.data.manifest import read_manifest
from wavegen_core.evaluation.plots import plot_hierarchy
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.models.hierarchy.prior import SPEC as PRIOR
from wavegen_core.models.hierarchy.stack import Hierarchy
from wavegen_core.models.hierarchy.vqvae import SPEC as TIER
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.device import choose_device

PATHS = {
    "audio": "the prepared corpus (its test audio is reconstructed)",
    "tiers": "every tier's checkpoint (tier k's at <k>/checkpoint.pt)",
    "prior": "the prior's checkpoint",
    "out": "samples and reconstructions",
    "reports": "metrics, speed and picture",
}
# What train_vqvae@<k> writes inside its directory of --tiers.
TIER_CHECKPOINT = "checkpoint.pt"


def test_audio(params: Params, root: Path, multiple: int) -> list[tuple[str, np.ndarray]]:
    """The test pieces' audio (the first `reconstruct_pieces`), each cut to
    `reconstruct_seconds` and to a whole number of top-tier codes."""
    sample = params.vqvae.sample
    manifest = read_manifest(root)
    pieces = [p for p in manifest if p.split == "test"] or [
        p for p in manifest if p.split == "validation"
    ]
    if sample.reconstruct_pieces is not None:
        pieces = pieces[: sample.reconstruct_pieces]
    cut = (
        None
        if sample.reconstruct_seconds is None
        else round(sample.reconstruct_seconds * params.audio.sample_rate)
    )
    chosen = []
    for piece in pieces:
        audio = load_audio(root / piece.audio, params.audio.sample_rate)[:cut]
        audio = audio[: len(audio) // multiple * multiple]
        if len(audio):
            chosen.append((piece.id, audio.astype(np.float32)))
    return chosen


def reconstruct(
    hierarchy: Hierarchy,
    pieces: list[np.ndarray],
    tier: int,
    generator: torch.Generator,
    temperature: float,
    device: torch.device,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each piece's audio encoded to ``tier`` and decoded back (each cut to its length),
    and the codes of tiers 1..``tier`` of the batch.

    The pieces go through as one batch, padded with silence to the longest: the
    decoders step through the batch together, which on a GPU costs about what one piece
    costs (their steps are bound by launches, not arithmetic)."""
    if not pieces:
        return [], []
    batch = torch.zeros(len(pieces), max(len(audio) for audio in pieces))
    for row, audio in enumerate(pieces):
        batch[row, : len(audio)] = torch.from_numpy(audio)
    codes = hierarchy.encode(batch.to(device), tier)
    decoded = hierarchy.decode(
        codes[-1], tier, generator=generator, temperature=temperature, progress=True
    ).audio
    return [decoded[row, : len(audio)] for row, audio in enumerate(pieces)], codes


def sample(params: Params, args: argparse.Namespace) -> None:
    config = params.vqvae
    rate = params.audio.sample_rate
    reports = Path(args.reports)
    device = choose_device(params.device)
    tiers = [
        TIER.load(args.tiers / str(k) / TIER_CHECKPOINT, device) for k in range(1, config.top + 1)
    ]
    hierarchy = Hierarchy(tiers, PRIOR.load(args.prior, device))
    hops = [hierarchy.total_hop(k) for k in range(1, config.top + 1)]
    staging = staging_dir(args.out, "run")

    # New pieces, from the prior down.
    started = time.perf_counter()
    drawn = (
        hierarchy.sample(
            config.sample.samples,
            config.sample.seconds,
            rate,
            seed=params.seed,
            temperature=config.sample.temperature,
            decoder_temperature=config.sample.decoder_temperature,
            progress=True,
        )
        if config.sample.samples
        else None
    )
    elapsed = time.perf_counter() - started
    (staging / "samples").mkdir(exist_ok=True)
    sampled_seconds = 0.0
    if drawn is not None:
        for index in range(config.sample.samples):
            audio = drawn.audio[index].cpu().numpy()
            sampled_seconds += len(audio) / rate
            write_wav(staging / "samples" / f"{index}.wav", audio, rate)
            plot_hierarchy(
                staging / "samples" / f"{index}.png",
                audio,
                rate,
                [codes[index].cpu().numpy() for codes in drawn.codes],
                hops,
                f"sample {index}: prior over tier {config.top}, decoded tier by tier",
            )

    # Test audio up to tier k and back, for every k.
    mel = evaluation_mel(rate)
    pieces = test_audio(params, args.audio, hops[-1])
    scores: dict[str, dict[str, float]] = {}
    (staging / "reconstructions" / "original").mkdir(parents=True, exist_ok=True)
    for piece_id, audio in pieces:
        write_wav(staging / "reconstructions" / "original" / f"{piece_id}.wav", audio, rate)
    for tier in range(1, config.top + 1):
        directory = staging / "reconstructions" / f"tier{tier}"
        directory.mkdir(parents=True, exist_ok=True)
        distances, mels = [], []
        generator = torch.Generator(device=device).manual_seed(params.seed)
        decoded, codes = reconstruct(
            hierarchy, [audio for _, audio in pieces], tier, generator,
            config.sample.decoder_temperature, device,
        )  # fmt: skip
        for row, (piece_id, audio) in enumerate(pieces):
            truth = torch.from_numpy(audio).to(device)[None]
            estimate = decoded[row][None]
            write_wav(directory / f"{piece_id}.wav", estimate[0].cpu().numpy(), rate)
            distances.append(float(multi_resolution_stft(estimate, truth)["total"]))
            mels.append(float(mel_l1(estimate, truth, mel)))
            if tier == config.top and row == 0:
                steps = [len(audio) // hop for hop in hops]
                plot_hierarchy(
                    reports / "example.png",
                    estimate[0].cpu().numpy(),
                    rate,
                    [c[0, :n].cpu().numpy() for c, n in zip(codes, steps, strict=True)],
                    hops,
                    f"{piece_id} encoded to tier {tier} and decoded back",
                )
        codebook_size = tiers[tier - 1].quantiser.codebook_size
        scores[f"tier_{tier}"] = {
            "mr_stft": float(np.mean(distances)) if distances else math.nan,
            "mel_l1": float(np.mean(mels)) if mels else math.nan,
            "bitrate": rate / hops[tier - 1] * math.log2(codebook_size),
        }
        log.info("sample_hierarchy: through tier %d: %s", tier, scores[f"tier_{tier}"])
    replace_dir(staging, args.out)
    write_json(reports / "metrics.json", {**scores, "test_pieces": len(pieces)})
    write_json(
        reports / "speed.json",
        {"seconds_per_second": sampled_seconds / elapsed if elapsed > 0 else None},
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("sample_hierarchy", PATHS, sample, argv)


if __name__ == "__main__":
    sys.exit(main())
