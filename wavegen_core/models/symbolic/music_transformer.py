"""The Music Transformer (Huang et al. 2019): a language model of performance events.

A decoder-only transformer over the tokens of :mod:`wavegen_core.midi.events`:
token embeddings (scaled by sqrt(d_model), tied to the output layer), a stack of
pre-norm layers of causal self-attention (:class:`CausalSelfAttention`, relative with
skewing, or plain with sinusoidal absolute positions for comparison) and a ReLU
feed-forward block, each with dropout on its residual branch. Pre-norm (LayerNorm
before each block) rather than the paper's post-norm: it trains stably without a
long warm-up, which matters at the tiny sizes a CPU allows.

Sampling feeds one token at a time through per-layer key/value caches, so each new
event costs one position's work; the cached logits equal a full forward pass's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pretty_midi
import torch
from torch import nn
from tqdm import tqdm

from wavegen_core.midi.events import END, PAD, START, EventsConfig, EventVocabulary, encode_notes
from wavegen_core.models.spec import ModelSpec, Optimiser
from wavegen_core.models.symbolic.attention import CausalSelfAttention, KVCache
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.param_types import Strict, TrainLoopConfig


def sinusoidal_positions(positions: torch.Tensor, width: int) -> torch.Tensor:
    """The sine/cosine position encodings of Vaswani et al. 2017, ``(len, width)``."""
    half = width // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1)
    )
    angles = positions.float()[:, None] * frequencies[None, :]
    encoding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if width % 2:
        encoding = torch.cat([encoding, torch.zeros_like(encoding[:, :1])], dim=-1)
    return encoding


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention and feed-forward blocks, each a residual branch."""

    def __init__(self, config: MusicTransformerModelConfig) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.d_model)
        self.attention = CausalSelfAttention(
            config.d_model,
            config.n_heads,
            context=config.context,
            relative=config.attention == "relative",
            dropout=config.dropout,
        )
        self.feed_forward_norm = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.d_ff, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cache)
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class MusicTransformer(nn.Module):
    """Next-event logits ``(batch, time, vocab_size)`` for a batch of token sequences."""

    def __init__(
        self,
        config: MusicTransformerModelConfig,
        vocab_size: int,
        vocab: EventVocabulary | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        # The events the tokens stand for (None when they are not performance events,
        # as in the prior over codes).
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab_size, config.d_model)
        nn.init.normal_(self.embedding.weight, std=config.d_model**-0.5)
        self.input_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model)

    def new_cache(self) -> list[KVCache]:
        """Empty key/value caches, one per layer, for :meth:`forward` step by step."""
        return [KVCache() for _ in self.layers]

    def forward(self, tokens: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Logits for ``tokens`` ``(batch, n)``; with ``cache``, they follow the cached ones."""
        x = self.embedding(tokens) * math.sqrt(self.config.d_model)
        if self.config.attention == "absolute":
            start = cache[0].position if cache is not None else 0
            positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
            x = x + sinusoidal_positions(positions, self.config.d_model).to(x.dtype)
        x = self.input_dropout(x)
        for index, layer in enumerate(self.layers):
            x = layer(x, None if cache is None else cache[index])
        logits: torch.Tensor = self.final_norm(x) @ self.embedding.weight.T
        return logits


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SamplingConfig:
    """How to draw each event: temperature, then top-k and nucleus (top-p) cuts."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = no cut
    top_p: float = 1.0  # 1.0 = no cut

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def filter_logits(logits: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    """``logits`` (…, vocab) divided by the temperature, with cut tokens set to -inf."""
    logits = logits / sampling.temperature
    if 0 < sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        # Keep the smallest set whose probability reaches top_p: a token is cut when
        # the tokens before it already reach it.
        cut = (cumulative - torch.softmax(ordered, dim=-1)) >= sampling.top_p
        logits = logits.masked_fill(cut.scatter(-1, order, cut), -math.inf)
    return logits


def primer_events(
    notes: list[pretty_midi.Note], vocab: EventVocabulary, seconds: float
) -> list[int]:
    """The events of the first ``seconds`` of ``notes``: a primer for :func:`sample_events`.

    The event sequence is cut before the first time shift that would pass ``seconds``;
    notes still sounding there have no NOTE_OFF yet, and the model decides when they end.
    """
    primer, elapsed = [], 0
    limit = round(seconds / vocab.config.time_step)
    for token in encode_notes(notes, vocab):
        elapsed += vocab.shift_steps(token)
        if elapsed > limit:
            break
        primer.append(token)
    return primer


@torch.no_grad()
def sample_events(
    model: MusicTransformer,
    vocab: EventVocabulary,
    *,
    primer: Sequence[int] = (),
    max_events: int | None = None,
    max_seconds: float | None = None,
    sampling: SamplingConfig = SamplingConfig(),
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    progress: tqdm | None = None,
) -> list[int]:
    """Events after ``primer`` (the primer included), without START or END.

    Stops at END, after ``max_events`` new events, or once the time shifts reach
    ``max_seconds`` (primer included); at least one limit must be given. Beyond the
    model's context, attention slides over the last ``context`` positions. With
    ``use_cache=False`` every step recomputes the window from scratch (the reference
    for tests and benchmarks). ``progress`` (a tqdm bar) is advanced once per event.
    Same model, primer and generator state: the same events.
    """
    if max_events is None and max_seconds is None:
        raise ValueError("give max_events or max_seconds (or both)")
    model.eval()
    device = model.embedding.weight.device
    context = model.config.context
    events = [int(token) for token in primer]
    elapsed = sum(vocab.shift_steps(token) for token in events) * vocab.config.time_step
    history = [START, *events][-context:]
    cache = model.new_cache() if use_cache else None
    feed = torch.tensor([history], device=device)
    new = 0
    while (max_events is None or new < max_events) and (
        max_seconds is None or elapsed < max_seconds
    ):
        logits = model(feed, cache)[:, -1]
        logits[:, PAD] = logits[:, START] = -math.inf  # never drawn: they are not events
        probabilities = torch.softmax(filter_logits(logits.float(), sampling), dim=-1)
        token = int(torch.multinomial(probabilities.cpu(), 1, generator=generator))
        if token == END:
            break
        events.append(token)
        elapsed += vocab.shift_steps(token) * vocab.config.time_step
        new += 1
        step = torch.tensor([[token]], device=device)
        feed = step if cache is not None else torch.cat([feed, step], dim=1)[:, -context:]
        if progress is not None:
            progress.update(1)
    return events


# --------------------------------------------------------------------------- spec


def inverse_sqrt_schedule(warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then 1/sqrt(step) decay (Vaswani)."""

    def factor(step: int) -> float:
        if warmup_steps == 0:
            return 1.0
        current = step + 1
        return min(current / warmup_steps, math.sqrt(warmup_steps / current))

    return factor


class MusicTransformerSpec(ModelSpec[MusicTransformer]):
    """The checkpoint records the model, its event vocabulary, the augmentation, the
    corpus and the optimiser's settings; Adam follows an inverse-square-root schedule
    after a linear warm-up (Vaswani et al. 2017, as the paper trains)."""

    name = "music_transformer"
    autoregressive = True

    def checkpoint_config(
        self,
        *,
        model: MusicTransformerModelConfig,
        events: EventsConfig,
        augmentation: Strict,
        corpus: str,
        loop: TrainLoopConfig,
        warmup_steps: int,
        seed: int,
    ) -> dict[str, Any]:
        """Enough to rebuild the model and to refuse a foreign resume."""
        return {
            "model": model.model_dump(mode="json"),
            "events": events.model_dump(mode="json"),
            "augmentation": augmentation.model_dump(mode="json"),
            "corpus": corpus,
            "optimizer": {
                "batch_size": loop.batch_size,
                "learning_rate": loop.learning_rate,
                "weight_decay": loop.weight_decay,
                "grad_clip": loop.grad_clip,
                "warmup_steps": warmup_steps,
            },
            "seed": seed,
        }

    def build(self, saved: Mapping[str, Any]) -> MusicTransformer:
        vocab = EventVocabulary(EventsConfig.model_validate(saved["events"]))
        config = MusicTransformerModelConfig.model_validate(saved["model"])
        return MusicTransformer(config, vocab.size, vocab)

    def optimisers(
        self, model: MusicTransformer, loop: TrainLoopConfig, saved: Mapping[str, Any]
    ) -> list[Optimiser]:
        optimiser = torch.optim.Adam(
            model.parameters(), lr=loop.learning_rate, weight_decay=loop.weight_decay
        )
        schedule = inverse_sqrt_schedule(int(saved["optimizer"]["warmup_steps"]))
        return [Optimiser("", optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, schedule))]


SPEC = MusicTransformerSpec()
