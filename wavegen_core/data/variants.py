"""Extra renderings of the train split, and generated etudes, for the transcriber alone.

A transcriber that has heard one piano learns that piano. Stage `render_variants`
writes a second corpus beside the prepared one, read by `train_transcriber` only:

* each train piece with MIDI is rendered ``renderings`` more times. Each rendering is
  transposed by a seeded shift (kept within MIDI 21-108), played at a seeded speed,
  and rendered with one of the training soundfonts (``data.render.soundfonts``) and a
  seeded :class:`~wavegen_core.audio.render.Synthesis`: program, gain, reverb, chorus
  and velocity response. Rendering k of a piece takes soundfont (offset + k) mod n,
  with the offset drawn per piece, so the renderings of one piece use different
  soundfonts and the soundfonts are used evenly;
* ``etudes`` pieces of generated piano writing (:mod:`wavegen_core.midi.etudes`) fill
  the keyboard and the textures the chorales never play, each rendered the same way.

The vocoders, the tiers and every other stage keep the corpus's one piano
(``data.render.soundfont``): they learn a sound; the transcriber must hear through any.
Every draw comes from a generator seeded by (seed, piece), so a piece is the same
whatever else is rendered and whichever worker renders it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from wavegen_core.audio.render import RenderConfig, Synthesis, check_renderer, render_midi
from wavegen_core.data.manifest import Piece
from wavegen_core.data.prepare import (
    PrepareResult,
    Rejection,
    build_corpus,
    staging_key,
    store_rendered,
)
from wavegen_core.data.prepare_config import VariantsConfig
from wavegen_core.midi.chorales import piece_rng
from wavegen_core.midi.etudes import HIGHEST_PITCH, LOWEST_PITCH, etude
from wavegen_core.midi.io import MidiReadError, load_midi

RENDERING_SOURCE = "rendering"
ETUDE_SOURCE = "etude"


@dataclass(frozen=True)
class VariantItem:
    """One piece to make: rendering ``rendering`` of ``source_midi``, or etude ``etude``."""

    piece_id: str
    origin: str
    source_id: str | None = None
    source_midi: str | None = None
    rendering: int = 0
    etude: int | None = None


@dataclass(frozen=True)
class VariantJob:
    """What rendering the variants reads: its config, the render settings, the corpus."""

    variants: VariantsConfig
    render: RenderConfig
    sample_rate: int
    seed: int
    corpus: Path

    @property
    def soundfonts(self) -> list[str]:
        return list(self.render.soundfonts) or [self.render.soundfont]


def plan(pieces: list[Piece], config: VariantsConfig) -> list[VariantItem]:
    """The items to make: the renderings of the train pieces with MIDI, then the etudes."""
    items = [
        VariantItem(
            piece_id=f"{piece.id}.r{k}",
            origin=f"{piece.id} rendering {k}",
            source_id=piece.id,
            source_midi=piece.midi,
            rendering=k,
        )
        for piece in pieces
        if piece.split == "train" and piece.midi
        for k in range(config.renderings)
    ]
    items += [
        VariantItem(piece_id=f"etude-{index:05d}", origin=f"etude {index}", etude=index)
        for index in range(config.etudes)
    ]
    return items


# --------------------------------------------------------------------------- one piece


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(rng.uniform(low, high)) if high > low else float(low)


def transpose_shift(rng: np.random.Generator, midi: pretty_midi.PrettyMIDI, largest: int) -> int:
    """A seeded shift in [-largest, largest] that keeps every pitched note in MIDI 21-108
    (0 when the piece already spans more than the keyboard allows)."""
    pitches = [n.pitch for i in midi.instruments if not i.is_drum for n in i.notes]
    if not pitches or largest == 0:
        return 0
    low = max(-largest, LOWEST_PITCH - min(pitches))
    high = min(largest, HIGHEST_PITCH - max(pitches))
    return int(rng.integers(low, high + 1)) if low <= high else 0


def transposed(midi: pretty_midi.PrettyMIDI, shift: int) -> pretty_midi.PrettyMIDI:
    """``midi`` with every pitched note moved by ``shift`` semitones (in place)."""
    for instrument in midi.instruments:
        if not instrument.is_drum:
            for note in instrument.notes:
                note.pitch += shift
    return midi


def stretched(midi: pretty_midi.PrettyMIDI, speed: float) -> pretty_midi.PrettyMIDI:
    """``midi`` played ``speed`` times as fast (in place): notes, pedal and tempo map."""
    if speed != 1.0:
        end = max(midi.get_end_time(), 1e-3)
        midi.adjust_times([0.0, end], [0.0, end / speed])
    return midi


def draw_synthesis(rng: np.random.Generator, config: VariantsConfig) -> Synthesis:
    """One seeded draw of how FluidSynth plays a rendering."""
    return Synthesis(
        program=int(rng.choice(config.programs)),
        gain=_uniform(rng, config.gain),
        reverb=(_uniform(rng, config.reverb_room), _uniform(rng, config.reverb_level)),
        chorus=_uniform(rng, config.chorus),
        velocity_gamma=_uniform(rng, config.velocity_gamma),
    )


def _performance(item: VariantItem, job: VariantJob) -> tuple[pretty_midi.PrettyMIDI, dict]:
    """The MIDI of ``item`` and how it was made (soundfont left to the caller)."""
    config = job.variants
    if item.etude is not None:
        midi = etude(job.seed, item.etude, config.etude_seconds, config.etude_tempo)
        return midi, {"etude": item.etude}
    assert item.source_midi is not None
    midi = load_midi(job.corpus / item.source_midi)
    rng = piece_rng(job.seed, item.piece_id)
    shift = transpose_shift(rng, midi, config.transpose)
    speed = _uniform(rng, config.tempo)
    return stretched(transposed(midi, shift), speed), {
        "source": item.source_id,
        "transpose": shift,
        "tempo": round(speed, 4),
    }


def soundfont_of(item: VariantItem, job: VariantJob) -> str:
    """Rendering k of a piece takes soundfont (offset + k) mod n, the offset seeded per
    piece; an etude draws one."""
    soundfonts = job.soundfonts
    key = item.source_id if item.source_id is not None else item.piece_id
    offset = int(piece_rng(job.seed, f"{key}/soundfont").integers(len(soundfonts)))
    return soundfonts[(offset + item.rendering) % len(soundfonts)]


def make_variant(item: VariantItem, job: VariantJob, staging: Path) -> Piece | Rejection:
    """Write one rendering or etude (audio, MIDI, record) into ``staging``."""
    try:
        midi, how = _performance(item, job)
    except (MidiReadError, OSError, ValueError) as err:
        return Rejection(item.origin, f"{type(err).__name__}: {err}")
    soundfont = soundfont_of(item, job)
    synthesis = draw_synthesis(piece_rng(job.seed, f"{item.piece_id}/synthesis"), job.variants)
    try:
        audio = render_midi(
            midi,
            sample_rate=job.sample_rate,
            soundfont=soundfont,
            release_tail=job.render.release_tail,
            peak=job.render.peak,
            synthesis=synthesis,
        )
    except ValueError as err:
        return Rejection(item.origin, f"cannot render: {err}")
    rendering = {
        **how,
        "soundfont": soundfont,
        "program": synthesis.program,
        "gain": round(synthesis.gain, 4),
        "reverb": [round(v, 4) for v in synthesis.reverb or ()],
        "chorus": round(synthesis.chorus or 0.0, 4),
        "velocity_gamma": round(synthesis.velocity_gamma, 4),
    }
    return store_rendered(
        staging,
        item.piece_id,
        audio,
        midi,
        job.sample_rate,
        split="train",
        source=ETUDE_SOURCE if item.etude is not None else RENDERING_SOURCE,
        origin=item.origin,
        rendering=rendering,
    )


# --------------------------------------------------------------------------- the corpus


def fingerprint(job: VariantJob) -> str:
    """A hash of everything that changes the variants, naming their staging directory."""
    relevant = {
        "seed": job.seed,
        "sample_rate": job.sample_rate,
        "variants": job.variants.model_dump(mode="json"),
        "render": job.render.model_dump(mode="json"),
    }
    return staging_key(relevant, job.corpus)


def render_variants(
    job: VariantJob, pieces: list[Piece], out_dir: str | os.PathLike[str], workers: int
) -> PrepareResult:
    """Render the variants of ``pieces`` (the prepared corpus) into ``out_dir``, atomically;
    an empty corpus when the config asks for none."""
    items = plan(pieces, job.variants)
    if items:
        for soundfont in job.soundfonts:
            check_renderer(soundfont, "data.render.soundfonts")
    return build_corpus(
        items,
        partial(make_variant, job=job),
        out_dir,
        key=fingerprint(job),
        workers=workers,
        desc="render_variants",
        allow_empty=True,
    )


def summarize_variants(
    pieces: list[Piece], rejected: list[Rejection], corpus_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """The variants' size, what they were rendered with and the keys they sound."""
    pitches = [
        note.pitch
        for piece in pieces
        if piece.midi
        for instrument in load_midi(Path(corpus_dir) / piece.midi).instruments
        if not instrument.is_drum
        for note in instrument.notes
    ]
    soundfonts = Counter(Path((p.rendering or {}).get("soundfont", "")).name for p in pieces)
    shifts = [abs((p.rendering or {}).get("transpose", 0)) for p in pieces if p.rendering]
    return {
        "pieces": len(pieces),
        "rejected": len(rejected),
        "hours": round(sum(p.duration for p in pieces) / 3600, 4),
        "notes": len(pitches),
        "lowest_pitch": min(pitches, default=0),
        "highest_pitch": max(pitches, default=0),
        "by_source": dict(sorted(Counter(p.source for p in pieces).items())),
        "by_soundfont": dict(sorted(soundfonts.items())),
        "transpose_mean_abs": round(float(np.mean(shifts)), 3) if shifts else 0.0,
    }
