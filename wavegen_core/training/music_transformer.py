"""Training and scoring the Music Transformer on a corpus of MIDI pieces.

Each training example is a random window of ``context + 1`` tokens from one piece's
event sequence (``START``, events, ``END``), after the piece was transposed and
stretched in time at random (Huang et al. 2019, section 6.2); the piece is drawn with
probability proportional to its number of notes. A step's batch depends only on the
seed and the step (resume is exact). Validation and test scores run over every event
of every held-out piece, in consecutive windows, without augmentation: negative
log-likelihood per event (nats) and next-event accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pretty_midi
import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core import parallel
from wavegen_core.midi.events import (
    END,
    PAD,
    START,
    EventsConfig,
    EventVocabulary,
    augment_notes,
    encode_notes,
    performance_notes,
)
from wavegen_core.midi.io import MidiReadError, load_midi
from wavegen_core.models.symbolic.music_transformer import SPEC
from wavegen_core.params import AugmentationConfig, MusicTransformerConfig
from wavegen_core.seeding import seed_everything, step_generator
from wavegen_core.training.loop import TrainResult, fit, held_out_or_train

EVAL_BATCH = 16


@dataclass(frozen=True)
class NotePiece:
    """One piece of the corpus: its name and its notes (sustain already applied)."""

    name: str
    notes: list[pretty_midi.Note]


def load_pieces(
    paths: Sequence[tuple[str, Path]], events: EventsConfig
) -> tuple[list[NotePiece], list[dict[str, str]]]:
    """The readable pieces among ``(name, path)`` pairs, and the others with their reasons."""
    pieces, rejected = [], []
    for name, path in paths:
        try:
            notes = performance_notes(load_midi(path), sustain=events.sustain)
        except (MidiReadError, OSError) as err:
            rejected.append({"piece": name, "path": str(path), "reason": str(err)})
            continue
        pieces.append(NotePiece(name, notes))
    return pieces, rejected


def piece_tokens(notes: list[pretty_midi.Note], vocab: EventVocabulary) -> list[int]:
    """``START``, the events of ``notes``, ``END``: one training sequence."""
    return [START, *encode_notes(notes, vocab), END]


def training_batch(
    pieces: Sequence[NotePiece],
    vocab: EventVocabulary,
    augmentation: AugmentationConfig,
    *,
    length: int,
    batch_size: int,
    seed: int,
    step: int,
) -> torch.Tensor:
    """``(batch_size, length + 1)`` token windows for ``step``; short pieces are PAD-ed."""
    generator = step_generator(seed, step)
    weights = torch.tensor([max(len(piece.notes), 1) for piece in pieces], dtype=torch.float)
    chosen = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
    rows = []
    for index in chosen.tolist():
        span = augmentation.transpose_semitones
        semitones = int(torch.randint(-span, span + 1, (1,), generator=generator))
        stretch = 1.0 + augmentation.time_stretch * (
            2.0 * float(torch.rand(1, generator=generator)) - 1.0
        )
        tokens = piece_tokens(augment_notes(pieces[index].notes, semitones, stretch), vocab)
        last_start = max(len(tokens) - (length + 1), 0)
        start = int(torch.randint(0, last_start + 1, (1,), generator=generator))
        rows.append(_padded(tokens[start : start + length + 1], length + 1))
    return torch.tensor(rows, dtype=torch.long)


def evaluation_windows(
    pieces: Sequence[NotePiece], vocab: EventVocabulary, length: int
) -> torch.Tensor:
    """Every event of every piece, in consecutive ``length + 1`` windows overlapping by one.

    Each token after a window's first is predicted exactly once over all windows.
    """
    rows = []
    for piece in pieces:
        tokens = piece_tokens(piece.notes, vocab)
        for start in range(0, len(tokens) - 1, length):
            rows.append(_padded(tokens[start : start + length + 1], length + 1))
    return torch.tensor(rows, dtype=torch.long).reshape(-1, length + 1)


def _padded(tokens: list[int], length: int) -> list[int]:
    return tokens + [PAD] * (length - len(tokens))


def event_loss(
    model: nn.Module, batch: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean cross-entropy (nats per event) of next-event prediction, PAD ignored."""
    logits = model(batch[:, :-1])
    targets = batch[:, 1:]
    counted = targets != PAD
    total = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum"
    )
    # The mean over the events of the global batch, also under torchrun.
    loss = total / parallel.global_denominator(counted.sum())
    correct = (logits.argmax(dim=-1) == targets) & counted
    return loss, {"accuracy": correct.sum() / counted.sum().clamp(min=1)}


EVENT_KINDS = ("NOTE_ON", "NOTE_OFF", "TIME_SHIFT", "VELOCITY", "END")


@torch.no_grad()
def score_windows(
    model: nn.Module,
    windows: torch.Tensor,
    device: torch.device,
    batch_size: int = EVAL_BATCH,
    vocab: EventVocabulary | None = None,
) -> dict[str, float]:
    """Negative log-likelihood per event (nats), accuracy and the number of events scored.

    With ``vocab``, also the NLL of each kind of event (``nll_TIME_SHIFT``...): where a
    model's uncertainty lies, e.g. timing against pitch.
    """
    kinds = None
    if vocab is not None:
        names = [vocab.describe(token).split("(")[0] for token in range(vocab.size)]
        kinds = torch.tensor([EVENT_KINDS.index(n) if n in EVENT_KINDS else -1 for n in names])
    total, correct, count = 0.0, 0, 0
    by_kind = torch.zeros(len(EVENT_KINDS), dtype=torch.float64)
    count_by_kind = torch.zeros(len(EVENT_KINDS), dtype=torch.float64)
    for batch in windows.split(batch_size):
        batch = batch.to(device)
        logits = model(batch[:, :-1]).float()
        targets = batch[:, 1:]
        counted = targets != PAD
        losses = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="none"
        ).cpu()
        total += float(losses.sum())
        correct += int(((logits.argmax(dim=-1) == targets) & counted).sum())
        count += int(counted.sum())
        if kinds is not None:
            kind = kinds[targets.flatten().cpu()]
            known = kind >= 0
            by_kind.index_add_(0, kind[known], losses[known].double())
            count_by_kind.index_add_(
                0, kind[known], torch.ones(int(known.sum()), dtype=torch.float64)
            )
    if count == 0:
        raise ValueError("no events to score")
    scores = {"nll": total / count, "accuracy": correct / count, "events": float(count)}
    for index, name in enumerate(EVENT_KINDS):
        if count_by_kind[index] > 0:
            scores[f"nll_{name}"] = float(by_kind[index] / count_by_kind[index])
    return scores


def train_music_transformer(
    config: MusicTransformerConfig,
    train: Sequence[NotePiece],
    validation: Sequence[NotePiece],
    *,
    seed: int,
    device: torch.device,
    checkpoint_path: str | os.PathLike[str],
    metrics_dir: str | os.PathLike[str],
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train (or resume training) a Music Transformer; see :func:`fit`."""
    if not train:
        raise ValueError("no training pieces")
    seed_everything(seed)
    vocab = EventVocabulary(config.events)
    loop = config.train
    saved = SPEC.checkpoint_config(
        model=config.model,
        events=config.events,
        augmentation=config.augmentation,
        corpus=config.corpus,
        loop=loop,
        warmup_steps=config.warmup_steps,
        seed=seed,
    )
    model = SPEC.build(saved)
    length = config.model.context
    pieces, eval_prefix = held_out_or_train(validation, train, "train_music_transformer")
    held_out = evaluation_windows(pieces, vocab, length)

    def evaluate(model: nn.Module) -> dict[str, float]:
        scores = score_windows(model, held_out, device)
        return {"nll": scores["nll"], "accuracy": scores["accuracy"]}

    return fit(
        model,
        SPEC.optimisers(model, loop, saved),
        loss_fn=event_loss,
        batch_for_step=lambda step: training_batch(
            train,
            vocab,
            config.augmentation,
            length=length,
            batch_size=loop.batch_size,
            seed=seed,
            step=step,
        ),
        loop=loop,
        checkpoint_path=checkpoint_path,
        metrics_dir=metrics_dir,
        config=saved,
        device=device,
        evaluate=evaluate,
        eval_prefix=eval_prefix,
        on_step=on_step,
    )
