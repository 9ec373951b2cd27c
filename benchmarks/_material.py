"""Synthetic material of the right shapes (random chords, their sine renders, random
codes) and every trained stage's own training function, and every generation, run on it
at a profile's sizes: speed and memory depend on the shapes, not on the music.

Shared by the measurements (:mod:`benchmarks.scale`, :mod:`benchmarks.bench_streaming`)
and the GPU check (:mod:`tools.gpu_check`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import torch

from wavegen_core.data.codes import Level, LevelPiece
from wavegen_core.data.pairs import pair_piece, roll_for_midi
from wavegen_core.data.segments import AlignedPiece
from wavegen_core.midi.events import performance_notes
from wavegen_core.midi.rolls import NoteTable
from wavegen_core.models.hierarchy.prior import SPEC as PRIOR_SPEC
from wavegen_core.models.hierarchy.stack import Hierarchy
from wavegen_core.models.hierarchy.vqvae import SPEC as TIER_SPEC
from wavegen_core.models.hierarchy.vqvae import Below
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_spec
from wavegen_core.params import Params
from wavegen_core.training.music_transformer import NotePiece, train_music_transformer
from wavegen_core.training.prior import train_prior
from wavegen_core.training.transcriber import train_transcriber
from wavegen_core.training.vocoder import train_vocoder
from wavegen_core.training.vqvae import train_tier

SEED = 0
PIECE_SECONDS = 12.0  # each synthetic piece; excerpts are drawn from three of them


def synthetic_midi(seconds: float, seed: int) -> pretty_midi.PrettyMIDI:
    """Random chords over the keyboard's middle, four notes a second."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for index in range(int(seconds * 4)):
        start = index / 4
        for pitch in rng.choice(np.arange(36, 96), size=3, replace=False):
            velocity = int(rng.integers(40, 110))
            piano.notes.append(pretty_midi.Note(velocity, int(pitch), start, start + 0.4))
    midi.instruments.append(piano)
    return midi


def sine_render(midi: pretty_midi.PrettyMIDI, seconds: float, rate: int) -> np.ndarray:
    """Decaying sines at the notes' pitches: audio whose notes line up with the MIDI."""
    audio = np.zeros(int(seconds * rate), dtype=np.float32)
    for note in midi.instruments[0].notes:
        first = int(note.start * rate)
        t = np.arange(min(int(0.5 * rate), len(audio) - first)) / rate
        tone = np.sin(2 * np.pi * pretty_midi.note_number_to_hz(note.pitch) * t)
        audio[first : first + len(t)] += 0.1 * (tone * np.exp(-4 * t)).astype(np.float32)
    return audio


def _pieces(rate: int) -> list[tuple[pretty_midi.PrettyMIDI, np.ndarray]]:
    return [
        (midi, sine_render(midi, PIECE_SECONDS, rate))
        for midi in (synthetic_midi(PIECE_SECONDS, seed) for seed in range(3))
    ]


def _loop(section: Any, steps: int, precision: str) -> Any:
    """``section`` with its training loop set to ``steps`` steps in ``precision``, on one
    process, evaluated and checkpointed once, at the end."""
    train = section.train.model_copy(
        update={
            "steps": steps,
            "precision": precision,
            "nproc": 1,
            "checkpoint_every": steps,
            "eval_every": steps,
            "log_every": steps,
        }
    )
    return section.model_copy(update={"train": train})


Trainer = Callable[[Params, torch.device, str, int, Path, Callable[[int], None]], int]


def _transcriber(params, device, precision, steps, work, on_step) -> int:
    config = _loop(params.transcription, steps, precision)
    mel = config.model.mel
    pieces = []
    for index, (midi, audio) in enumerate(_pieces(mel.sample_rate)):
        frames = len(audio) // mel.hop_length + 1
        notes = NoteTable.from_midi(midi, mel.frames_per_second, frames)
        pieces.append(AlignedPiece(f"p{index}", audio, notes))
    train_transcriber(
        config, pieces[:2], pieces[2:], seed=SEED, device=device,
        checkpoint_path=work / "model.pt", metrics_dir=work, on_step=on_step,
    )  # fmt: skip
    return int(config.train.batch_size * config.segment_seconds * mel.sample_rate)


def _music_transformer(params, device, precision, steps, work, on_step) -> int:
    config = _loop(params.music_transformer, steps, precision)
    pieces = [
        NotePiece(f"p{index}", performance_notes(synthetic_midi(60.0, index), sustain=True))
        for index in range(3)
    ]
    train_music_transformer(
        config, pieces[:2], pieces[2:], seed=SEED, device=device,
        checkpoint_path=work / "model.pt", metrics_dir=work, on_step=on_step,
    )  # fmt: skip
    return config.train.batch_size * config.model.context


def _vocoder(family: str) -> Trainer:
    def train(params, device, precision, steps, work, on_step) -> int:
        vocoder = params.vocoder
        section = _loop(vocoder.section(family), steps, precision)
        config = vocoder.model_copy(update={family: section})
        rate, hop = params.audio.sample_rate, vocoder.conditioning.hop_length
        pieces = [
            pair_piece(f"p{index}", audio, midi, rate, hop)
            for index, (midi, audio) in enumerate(_pieces(rate))
        ]
        train_vocoder(
            family, config, pieces[:2], pieces[2:], sample_rate=rate, seed=SEED,
            device=device, checkpoint_path=work / "model.pt", metrics_dir=work,
            on_step=on_step,
        )  # fmt: skip
        return section.train.batch_size * section.segment_frames * hop

    return train


def _levels(params: Params) -> list[Level]:
    """Audio, then random codes at each tier's rate, as the tiers read them."""
    rate = params.audio.sample_rate
    levels = [
        Level(
            [LevelPiece(f"p{i}", "train", audio) for i, (_, audio) in enumerate(_pieces(rate))],
            None,
            {"level": "audio"},
        )
    ]
    rng = np.random.default_rng(SEED)
    hop = 1
    for number in range(1, params.vqvae.top):
        tier = params.vqvae.tier(number)
        hop *= tier.hop
        length = int(PIECE_SECONDS * rate) // hop
        codes = [rng.integers(0, tier.codebook_size, length) for _ in range(3)]
        codebook = rng.standard_normal((tier.codebook_size, tier.code_dim)).astype(np.float32)
        pieces = [LevelPiece(f"p{i}", "train", values) for i, values in enumerate(codes)]
        levels.append(Level(pieces, codebook, {"level": f"tier {number} codes", "tier": number}))
    return levels


def _tier(number: int) -> Trainer:
    def train(params, device, precision, steps, work, on_step) -> int:
        tier = _loop(params.vqvae.tier(number), steps, precision)
        tiers = {**params.vqvae.tiers, str(number): tier}
        config = params.vqvae.model_copy(update={"tiers": tiers})
        level = _levels(params)[number - 1]
        train_tier(
            number, config, level, level.pieces[:2], level.pieces[2:],
            sample_rate=params.audio.sample_rate, seed=SEED, device=device,
            checkpoint_path=work / "model.pt", metrics_dir=work,
            input_digest="gpu-check", on_step=on_step,
        )  # fmt: skip
        return tier.train.batch_size * tier.segment

    return train


def _prior(params, device, precision, steps, work, on_step) -> int:
    config = _loop(params.vqvae.prior, steps, precision)
    size = params.vqvae.tier(params.vqvae.top).codebook_size
    rng = np.random.default_rng(SEED)
    codes = [rng.integers(0, size, 4 * config.model.context) for _ in range(3)]
    train_prior(
        config, size, codes[:2], codes[2:], seed=SEED, device=device,
        checkpoint_path=work / "model.pt", metrics_dir=work, on_step=on_step,
    )  # fmt: skip
    return config.train.batch_size * config.model.context


def trainers(params: Params) -> dict[str, Trainer]:
    rows: dict[str, Trainer] = {
        "train_transcriber": _transcriber,
        "train_music_transformer": _music_transformer,
    }
    rows |= {f"train_vocoder@{family}": _vocoder(family) for family in params.vocoder.families}
    rows |= {f"train_vqvae@{key}": _tier(int(key)) for key in params.vqvae.tiers}
    rows["train_prior"] = _prior
    return rows


def generators(
    params: Params, device: torch.device, seconds: float
) -> dict[str, Callable[[], int]]:
    """Each vocoder family's render of ``seconds`` of a random roll, then the hierarchy's
    draw of ``seconds`` of new audio, untrained weights, fp32: by row name, a call that
    generates and returns the number of samples made (the models are built here)."""
    rate = params.audio.sample_rate
    vocoder = params.vocoder
    roll = roll_for_midi(
        synthetic_midi(seconds, 7), int(seconds * rate), rate, vocoder.conditioning.hop_length
    )
    calls: dict[str, Callable[[], int]] = {}
    for family in vocoder.families:
        spec = vocoder_spec(family)
        torch.manual_seed(SEED)
        saved = spec.checkpoint_config(vocoder.section(family), vocoder.conditioning, rate, SEED)
        model = spec.build(saved).to(device).eval()

        def render(spec: Any = spec, model: torch.nn.Module = model) -> int:
            (audio,) = render_pieces(
                spec, model, [roll], chunk_frames=512, context_frames=16, progress=False,
                generator=torch.Generator(device="cpu").manual_seed(SEED),
            )  # fmt: skip
            return len(audio)

        calls[f"generate {family}"] = render
    torch.manual_seed(SEED)
    tiers, below = [], Below()
    for key in params.vqvae.tiers:
        number = int(key)
        saved = TIER_SPEC.checkpoint_config(
            number, params.vqvae.tier(number), params.vqvae.quantiser, below,
            sample_rate=rate, seed=SEED, input_digest="gpu-check",
        )  # fmt: skip
        tier = TIER_SPEC.build(saved, below).to(device).eval()
        tiers.append(tier)
        below = Below(tier.quantiser.codebook)
    top = params.vqvae.tier(params.vqvae.top)
    prior_saved = PRIOR_SPEC.checkpoint_config(
        params.vqvae.prior.model, params.vqvae.prior.train, top.codebook_size, SEED
    )
    hierarchy = Hierarchy(tiers, PRIOR_SPEC.build(prior_saved).eval())
    calls["generate hierarchy (prior, then tiers)"] = lambda: int(
        hierarchy.sample(1, seconds, rate, seed=SEED).audio.shape[-1]
    )
    return calls
