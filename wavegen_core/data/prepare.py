"""Turn a corpus into aligned audio + MIDI at one sample rate, with splits and a manifest.

Work is spread over processes, one piece at a time. Each finished piece is recorded in a
staging directory, so a killed run resumes where it stopped; the staging directory
becomes the output only once the manifest is written (the stage contract, rule 3).
Unusable files are listed with their reason, never fatal on their own (rule 6).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from wavegen_core import __version__
from wavegen_core.audio.io import AudioReadError, load_audio, write_wav
from wavegen_core.audio.render import check_renderer, render_midi
from wavegen_core.data.manifest import MANIFEST_NAME, Piece, write_manifest
from wavegen_core.data.prepare_config import PrepareJob
from wavegen_core.data.sources import SourceItem, inventory
from wavegen_core.errors import WavegenError
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.midi.io import MidiReadError, load_midi, note_count, write_midi
from wavegen_core.progress import log, progress

REJECTED_NAME = "rejected.json"


class NothingUsable(WavegenError):
    """Every piece of the corpus was rejected."""


@dataclass(frozen=True)
class Rejection:
    origin: str
    reason: str


# What making one item gives: its piece, or what was rejected (several files of one
# item, such as an audio file and the MIDI that was to label it, each with a reason).
Outcome = Piece | Rejection | tuple[Rejection, ...]
AUDIO_REJECTED = "its audio was rejected"


@dataclass
class PrepareResult:
    pieces: list[Piece]
    rejected: list[Rejection]
    resumed: int


# --------------------------------------------------------------------------- one piece


def _render(midi: Any, job: PrepareJob) -> np.ndarray:
    render = job.data.render
    return render_midi(
        midi,
        sample_rate=job.sample_rate,
        soundfont=render.soundfont,
        release_tail=render.release_tail,
        peak=render.peak,
    )


def _load_piece(item: SourceItem, job: PrepareJob) -> tuple[np.ndarray, Any, list[Rejection]]:
    """Audio and MIDI (or None) of one item, read or rendered, and the item's MIDI as a
    rejection when it cannot label the audio: unreadable, without notes, or ending more
    than ``data.pair_tolerance`` seconds from the audio. The audio is then unlabelled."""
    if item.corpus_id is not None:
        from wavegen_core.midi.chorales import chorale_to_midi

        midi = chorale_to_midi(item.corpus_id, job.data.chorales, job.seed)
        return _render(midi, job), midi, []
    if item.audio is None:
        assert item.midi is not None
        midi = load_midi(item.midi)
        return _render(midi, job), midi, []
    audio = load_audio(item.audio, job.sample_rate)
    if item.midi is None:
        return audio, None, []
    try:
        midi = load_midi(item.midi)
    except MidiReadError as err:
        return audio, None, [Rejection(str(item.midi), f"{err}; its audio is kept unlabelled")]
    seconds, midi_end = len(audio) / job.sample_rate, midi.get_end_time()
    if abs(midi_end - seconds) > job.data.pair_tolerance:
        reason = (
            f"does not fit its audio: the MIDI ends at {midi_end:.2f} s, the audio lasts "
            f"{seconds:.2f} s (data.pair_tolerance {job.data.pair_tolerance:g} s); "
            "its audio is kept unlabelled"
        )
        return audio, None, [Rejection(str(item.midi), reason)]
    return audio, midi, []


RECORDS = "records"
SIDE_REJECTIONS = ".rejected.json"


def record_piece(staging: Path, piece: Piece, rejected: Sequence[Rejection] = ()) -> Piece:
    """Mark ``piece`` finished in ``staging``; written last, after its audio and MIDI,
    so that its presence means the piece is complete. ``rejected`` lists what of the
    piece's files was left out (a MIDI that does not fit its audio), written before,
    so that a resumed run still reports it."""
    if rejected:
        write_json(
            staging / RECORDS / f"{piece.id}{SIDE_REJECTIONS}", [asdict(r) for r in rejected]
        )
    write_json(staging / RECORDS / f"{piece.id}.json", asdict(piece))
    return piece


def store_rendered(
    staging: Path,
    piece_id: str,
    audio: np.ndarray,
    midi: Any,
    sample_rate: int,
    **record: Any,
) -> Piece:
    """Write a rendered piece's audio and MIDI into ``staging`` and record it; ``record``
    holds the rest of its :class:`Piece` (split, source, origin, rendering)."""
    audio_rel, midi_rel = f"audio/{piece_id}.wav", f"midi/{piece_id}.mid"
    write_wav(staging / audio_rel, audio, sample_rate)
    write_midi(staging / midi_rel, midi)
    piece = Piece(
        id=piece_id,
        audio=audio_rel,
        midi=midi_rel,
        duration=round(len(audio) / sample_rate, 4),
        has_midi=True,
        notes=note_count(midi),
        **record,
    )
    return record_piece(staging, piece)


def _rejected(item: SourceItem, reason: str) -> Rejection | tuple[Rejection, ...]:
    """``item`` rejected for ``reason``; a MIDI file that was to label rejected audio is
    listed with it, so that every file of the item is accounted for."""
    rejection = Rejection(item.origin, reason)
    if item.audio is not None and item.midi is not None:
        return rejection, Rejection(str(item.midi), AUDIO_REJECTED)
    return rejection


def prepare_piece(item: SourceItem, job: PrepareJob, staging: Path) -> Outcome:
    """Read or render one piece into ``staging``; a bad file becomes a :class:`Rejection`
    (with the MIDI that was to label it, when the audio is what failed)."""
    try:
        audio, midi, rejected = _load_piece(item, job)
    except (AudioReadError, MidiReadError) as err:
        return _rejected(item, str(err))
    except (OSError, ValueError) as err:
        return _rejected(item, f"{type(err).__name__}: {err}")
    duration = len(audio) / job.sample_rate
    if duration < job.data.min_duration:
        return _rejected(
            item,
            f"too short: {duration:.2f} s < data.min_duration {job.data.min_duration:g} s",
        )
    audio_rel = f"audio/{item.piece_id}.wav"
    write_wav(staging / audio_rel, audio, job.sample_rate)
    midi_rel = None
    if midi is not None:
        midi_rel = f"midi/{item.piece_id}.mid"
        write_midi(staging / midi_rel, midi)
    return record_piece(
        staging,
        Piece(
            id=item.piece_id,
            audio=audio_rel,
            midi=midi_rel,
            duration=round(duration, 4),
            split=item.split or ("unlabelled" if midi is None else "train"),
            source=item.source,
            has_midi=midi is not None,
            notes=note_count(midi) if midi is not None else 0,
            origin=item.origin,
        ),
        rejected,
    )


# --------------------------------------------------------------------------- the corpus


def assign_splits(
    piece_ids: list[str], validation: float, test: float, seed: int
) -> dict[str, str]:
    """A seeded split by piece. Each non-zero held-out fraction gets at least one piece
    when there are at least three, so the tiny profile always has all three splits."""
    ids = sorted(piece_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    count = len(ids)

    def held_out(fraction: float) -> int:
        wanted = int(round(fraction * count))
        return max(wanted, 1) if fraction > 0 and count >= 3 else wanted

    n_validation, n_test = held_out(validation), held_out(test)
    splits = {}
    for rank, index in enumerate(order):
        splits[ids[index]] = (
            "validation"
            if rank < n_validation
            else "test"
            if rank < n_validation + n_test
            else "train"
        )
    return splits


def fingerprint(job: PrepareJob) -> str:
    """A hash of everything that changes the prepared corpus, naming its staging directory."""
    relevant = {
        "seed": job.seed,
        "audio": {"sample_rate": job.sample_rate},
        # The transcriber's variants are rendered by their own stage.
        "data": job.data.model_dump(
            exclude={"num_workers": True, "variants": True, "render": {"soundfonts": True}}
        ),
    }
    return staging_key(relevant)


def staging_key(relevant: dict[str, Any], corpus: Path | None = None) -> str:
    """A short hash of ``relevant`` (and of ``corpus``'s manifest, when a corpus is made
    from another), naming a staging directory; a new release of the code changes it."""
    relevant = {**relevant, "version": __version__}
    if corpus is not None:
        relevant["corpus"] = hashlib.sha256((corpus / MANIFEST_NAME).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def _side_rejections(staging: Path, pieces: Sequence[Piece]) -> list[Rejection]:
    """What the finished ``pieces`` left out of their own files (see :func:`record_piece`)."""
    found = []
    for piece in pieces:
        path = staging / RECORDS / f"{piece.id}{SIDE_REJECTIONS}"
        if path.is_file():
            found += [Rejection(**r) for r in json.loads(path.read_text(encoding="utf-8"))]
    return found


def _finished_records(staging: Path) -> dict[str, Piece]:
    records = {}
    for path in sorted((staging / RECORDS).glob("*.json")):
        if path.name.endswith(SIDE_REJECTIONS):
            continue
        try:
            piece = Piece(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            continue  # a record is written atomically; anything else is not ours
        if (staging / piece.audio).is_file():
            records[piece.id] = piece
    return records


class Item(Protocol):
    """What :func:`build_corpus` needs of one piece to make: its id and where it comes from."""

    @property
    def piece_id(self) -> str: ...

    @property
    def origin(self) -> str: ...


def _run(
    items: Sequence[Item], work: Callable[[Any], Outcome], workers: int, desc: str
) -> list[Outcome]:
    workers = min(workers or os.cpu_count() or 1, max(len(items), 1))
    bar = partial(progress, total=len(items), desc=desc, unit="piece")
    if workers == 1:
        return list(bar(work(item) for item in items))
    # forkserver, not fork: a parent that has imported torch holds thread pools that a
    # forked child would inherit mid-lock and hang on.
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        return list(bar(pool.imap_unordered(work, items)))


def build_corpus(
    items: Sequence[Item],
    work: Callable[..., Outcome],
    out_dir: str | os.PathLike[str],
    *,
    key: str,
    workers: int,
    desc: str,
    arrange: Callable[[list[Piece]], list[Piece]] | None = None,
    allow_empty: bool = False,
    unused: Sequence[Rejection] = (),
) -> PrepareResult:
    """Make every item with ``work(item, staging)`` into ``out_dir``, atomically.

    ``key`` hashes everything that changes the output: a killed run with the same key
    resumes from the pieces it finished. ``arrange`` may rewrite the pieces (their
    splits) before the manifest is written. ``out_dir`` then holds the pieces' files,
    ``manifest.json`` and ``rejected.json``: the items rejected, what a piece left out
    of its own files, and ``unused`` (what the source found and no item uses). Raises
    :class:`NothingUsable` when no piece survives.
    """
    out_dir = Path(out_dir)
    duplicates = [piece_id for piece_id, n in Counter(i.piece_id for i in items).items() if n > 1]
    if duplicates:
        raise WavegenError(f"piece ids are not unique: {duplicates[:5]}")
    staging = staging_dir(out_dir, key)
    done = _finished_records(staging)
    if done:
        log.info("%s: resuming, %d pieces already made", desc, len(done))
    todo = [item for item in items if item.piece_id not in done]
    outcomes = _run(todo, partial(work, staging=staging), workers, desc)

    pieces = list(done.values()) + [o for o in outcomes if isinstance(o, Piece)]
    rejected = sorted(
        [o for o in outcomes if isinstance(o, Rejection)]
        + [r for o in outcomes if isinstance(o, tuple) for r in o]
        + _side_rejections(staging, pieces)
        + list(unused),
        key=lambda r: r.origin,
    )
    if not pieces and not (allow_empty and not items):
        reasons = "; ".join(f"{r.origin}: {r.reason}" for r in rejected[:5])
        raise NothingUsable(f"no usable piece among {len(items)} ({reasons})")
    if arrange is not None:
        pieces = arrange(pieces)
    pieces = sorted(pieces, key=lambda p: p.id)
    write_json(staging / REJECTED_NAME, [asdict(r) for r in rejected])
    write_manifest(staging, pieces)
    shutil.rmtree(staging / RECORDS, ignore_errors=True)
    replace_dir(staging, out_dir)
    log.info("%s: %d pieces made, %d rejected -> %s", desc, len(pieces), len(rejected), out_dir)
    return PrepareResult(pieces=pieces, rejected=rejected, resumed=len(done))


def prepare_corpus(job: PrepareJob, out_dir: str | os.PathLike[str]) -> PrepareResult:
    """Prepare the corpus that ``job.data`` names into ``out_dir``, atomically.

    ``out_dir`` holds ``audio/``, ``midi/``, ``manifest.json`` and ``rejected.json``.
    Raises :class:`NothingUsable` when no piece survives.
    """
    items, unused = inventory(job.data.source, job.data.root)
    if job.data.max_pieces is not None:
        items = items[: job.data.max_pieces]
    log.info("prepare_data: %d pieces from %s", len(items), job.data.source)
    if any(item.corpus_id is not None or item.audio is None for item in items):
        check_renderer(job.data.render.soundfont)

    def arrange(pieces: list[Piece]) -> list[Piece]:
        labelled = [p.id for p in pieces if p.has_midi and p.source != "maestro"]
        splits = assign_splits(labelled, job.data.splits.validation, job.data.splits.test, job.seed)
        return [Piece(**{**asdict(p), "split": splits.get(p.id, p.split)}) for p in pieces]

    return build_corpus(
        items,
        partial(prepare_piece, job=job),
        out_dir,
        key=fingerprint(job),
        workers=job.data.num_workers,
        desc="prepare_data",
        arrange=arrange,
        unused=[Rejection(str(u.path), u.reason) for u in unused],
    )


def summarize(pieces: list[Piece], rejected: list[Rejection]) -> dict[str, Any]:
    """Summary statistics of a prepared corpus, as DVC metrics."""
    stats: dict[str, Any] = {
        "pieces": len(pieces),
        "rejected": len(rejected),
        "hours": round(sum(p.duration for p in pieces) / 3600, 4),
        "notes": sum(p.notes for p in pieces),
        "splits": {},
    }
    for split in ("train", "validation", "test", "unlabelled"):
        members = [p for p in pieces if p.split == split]
        if members:
            stats["splits"][split] = {
                "pieces": len(members),
                "seconds": round(sum(p.duration for p in members), 2),
                "notes": sum(p.notes for p in members),
            }
    return stats
