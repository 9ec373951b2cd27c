"""The sets the transcriber is scored on beside the test split.

* ``dev``: the set every choice is made on (decoding thresholds, a training recipe, a
  model size): the validation split rendered on the training pianos other than the
  corpus's own, the way ``data.variants`` renders the training material, and etudes no
  training run reaches (``evaluation.dev``). Training material, never trained on.

Two are reserved, rendered with a piano no model trained on (``evaluation.soundfont``,
MuseScore General by default), and reported, never used to choose:

* ``reserved_piano``: the test split's MIDI, the same music on another instrument;
* ``unseen_music``: pieces of music21's corpus by composers other than Bach, performed
  like the chorales (their humanisation, at ``evaluation.unseen_music.tempo_bpm``),
  each cut to its first ``seconds``.

Each set is a corpus like the prepared one (audio, MIDI, manifest; every piece in the
test split), made by :func:`~wavegen_core.data.prepare.build_corpus`, so a killed run
resumes and an output is never half-written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pretty_midi

from wavegen_core.audio.render import check_renderer, render_midi
from wavegen_core.data.manifest import Piece
from wavegen_core.data.prepare import (
    PrepareResult,
    Rejection,
    build_corpus,
    staging_key,
    store_rendered,
)
from wavegen_core.data.prepare_config import (
    DevSetConfig,
    EvaluationConfig,
    RenderConfig,
    VariantsConfig,
)
from wavegen_core.data.sources import safe_id
from wavegen_core.data.variants import VariantItem, VariantJob, make_variant
from wavegen_core.midi.chorales import ChoralesConfig, chorale_to_midi, first_seconds
from wavegen_core.midi.io import MidiReadError, load_midi

DEV, RESERVED_PIANO, UNSEEN_MUSIC = "dev", "reserved_piano", "unseen_music"
EVALUATION_SETS = (RESERVED_PIANO, UNSEEN_MUSIC)
# Far above any `data.variants.etudes` a profile trains on, so no dev etude was heard.
FIRST_DEV_ETUDE = 1_000_000


@dataclass(frozen=True)
class EvaluationItem:
    """One piece of a set: a test piece's MIDI file, or a music21 corpus id."""

    piece_id: str
    origin: str
    midi: Path | None = None
    corpus_id: str | None = None


@dataclass(frozen=True)
class EvaluationJob:
    """What rendering the sets reads of the params."""

    evaluation: EvaluationConfig
    chorales: ChoralesConfig
    sample_rate: int
    release_tail: float
    peak: float
    seed: int


def _performance(item: EvaluationItem, job: EvaluationJob) -> pretty_midi.PrettyMIDI:
    if item.midi is not None:
        return load_midi(item.midi)
    assert item.corpus_id is not None
    unseen = job.evaluation.unseen_music
    style = job.chorales.model_copy(update={"tempo_bpm": unseen.tempo_bpm, "program": 0})
    return first_seconds(chorale_to_midi(item.corpus_id, style, job.seed), unseen.seconds)


def make_evaluation_piece(
    item: EvaluationItem, job: EvaluationJob, staging: Path
) -> Piece | Rejection:
    """Perform (or read) and render one piece of a set into ``staging``."""
    try:
        midi = _performance(item, job)
        audio = render_midi(
            midi,
            sample_rate=job.sample_rate,
            soundfont=job.evaluation.soundfont,
            release_tail=job.release_tail,
            peak=job.peak,
        )
    except (MidiReadError, OSError, ValueError) as err:
        return Rejection(item.origin, f"{type(err).__name__}: {err}")
    return store_rendered(
        staging,
        item.piece_id,
        audio,
        midi,
        job.sample_rate,
        split="test",
        source="music21" if item.corpus_id else "test_split",
        origin=item.origin,
        rendering={"soundfont": job.evaluation.soundfont},
    )


def set_items(
    name: str, test: list[Piece], corpus: Path, job: EvaluationJob
) -> list[EvaluationItem]:
    """The pieces of set ``name``: the test split's (with MIDI) or the unseen music's."""
    if name == RESERVED_PIANO:
        return [
            EvaluationItem(
                p.id, f"{p.id} on {Path(job.evaluation.soundfont).name}", corpus / p.midi
            )
            for p in test
            if p.split == "test" and p.midi
        ]
    return [
        EvaluationItem(safe_id(cid), f"music21:{cid}", corpus_id=cid)
        for cid in job.evaluation.unseen_music.pieces
    ]


def _fingerprint(name: str, job: EvaluationJob, corpus: Path) -> str:
    relevant = {
        "set": name,
        "evaluation": job.evaluation.model_dump(mode="json"),
        "chorales": job.chorales.model_dump(mode="json"),
        "render": [job.sample_rate, job.release_tail, job.peak, job.seed],
    }
    return staging_key(relevant, corpus)


def make_evaluation_set(
    name: str,
    job: EvaluationJob,
    pieces: list[Piece],
    corpus: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int,
) -> PrepareResult:
    """Render set ``name`` (``reserved_piano`` or ``unseen_music``) into ``out_dir``; an
    empty set (no test split) is written as an empty corpus."""
    corpus = Path(corpus)
    items = set_items(name, pieces, corpus, job)
    if items:
        check_renderer(job.evaluation.soundfont, "evaluation.soundfont")
    return build_corpus(
        items,
        partial(make_evaluation_piece, job=job),
        out_dir,
        key=_fingerprint(name, job, corpus),
        workers=workers,
        desc=f"prepare_evaluation ({name})",
        allow_empty=True,
    )


@dataclass(frozen=True)
class DevJob:
    """What rendering the dev set reads of the params."""

    dev: DevSetConfig
    variants: VariantsConfig
    render: RenderConfig
    sample_rate: int
    seed: int


def dev_items(pieces: list[Piece], dev: DevSetConfig) -> list[VariantItem]:
    """The validation split's renderings, then the unheard etudes."""
    validation = sorted(
        (p for p in pieces if p.split == "validation" and p.midi), key=lambda p: p.id
    )
    items = [
        VariantItem(
            piece_id=f"{piece.id}.dev{k}",
            origin=f"{piece.id} dev rendering {k}",
            source_id=piece.id,
            source_midi=piece.midi,
            rendering=k,
        )
        for piece in validation
        for k in range(dev.renderings)
    ]
    return items + [
        VariantItem(piece_id=f"dev-etude-{i}", origin=f"dev etude {i}", etude=FIRST_DEV_ETUDE + i)
        for i in range(dev.etudes)
    ]


def _dev_piece(item: VariantItem, job: VariantJob, staging: Path) -> Piece | Rejection:
    """A rendering or etude as the variants make it, filed in the set's test split."""
    made = make_variant(item, job, staging)
    return replace(made, split="test") if isinstance(made, Piece) else made


def make_dev_set(
    job: DevJob,
    pieces: list[Piece],
    corpus: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int,
) -> PrepareResult:
    """Render the dev set into ``out_dir`` (an empty corpus when it has no item)."""
    corpus = Path(corpus)
    others = [s for s in job.render.soundfonts if s != job.render.soundfont]
    variant_job = VariantJob(
        job.variants.model_copy(update={"etude_seconds": job.dev.etude_seconds}),
        job.render.model_copy(update={"soundfonts": others or [job.render.soundfont]}),
        job.sample_rate,
        job.seed,
        corpus,
    )
    relevant = {
        "set": DEV,
        "dev": job.dev.model_dump(mode="json"),
        "variants": variant_job.variants.model_dump(mode="json"),
        "render": variant_job.render.model_dump(mode="json"),
        "job": [job.sample_rate, job.seed],
    }
    return build_corpus(
        dev_items(pieces, job.dev),
        partial(_dev_piece, job=variant_job),
        out_dir,
        key=staging_key(relevant, corpus),
        workers=workers,
        desc=f"prepare_evaluation ({DEV})",
        allow_empty=True,
    )
