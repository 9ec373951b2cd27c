"""The top-level prior of the VQ-VAE hierarchy: a transformer language model of codes.

Once the tiers are trained, the top tier's codes of the training audio are modelled
autoregressively, so that new music can be drawn from nothing and decoded down the
tiers (van den Oord et al. 2017, section 3.2; Jukebox, Dhariwal et al. 2020, section
2.3). The model is the Music Transformer of
:mod:`wavegen_core.models.symbolic.music_transformer` over a vocabulary of ``codebook_size + 1``
tokens: the codes ``0 .. codebook_size - 1`` and a START token (``codebook_size``)
that opens every piece. START is an input only, so its logit is dropped from the
output and can never be drawn.

Sampling feeds one code at a time through the per-layer key/value caches. Beyond the
model's context the window slides as in
:func:`~wavegen_core.models.music_transformer.sample_events`: each new code attends
over the last ``context`` positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core import parallel
from wavegen_core.models.spec import ModelSpec
from wavegen_core.models.symbolic.attention import KVCache
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.models.symbolic.music_transformer import MusicTransformer
from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.progress import progress_bar

# Targets below zero (the padding of windows that run past a piece's end) are ignored.
IGNORE = -100


class CodePrior(nn.Module):
    """Next-code logits ``(batch, n, codebook_size)`` for a batch of code sequences."""

    def __init__(self, config: MusicTransformerModelConfig, codebook_size: int) -> None:
        super().__init__()
        if codebook_size < 1:
            raise ValueError(f"codebook_size must be >= 1, got {codebook_size}")
        self.codebook_size = codebook_size
        self.transformer = MusicTransformer(config, vocab_size=codebook_size + 1)

    @property
    def start(self) -> int:
        """The START token, fed before a piece's first code."""
        return self.codebook_size

    @property
    def context(self) -> int:
        """The most positions the model attends over."""
        return self.transformer.config.context

    def forward(self, tokens: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Logits of the code after each of ``tokens`` ``(batch, n)`` (codes or START).

        With ``cache`` (from ``self.transformer.new_cache()``), ``tokens`` follow the
        cached positions.
        """
        logits: torch.Tensor = self.transformer(tokens, cache)[..., : self.codebook_size]
        return logits

    def loss(self, window: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean negative log-likelihood (nats per code) of ``window[:, 1:]`` given the past.

        ``window`` is ``(batch, n + 1)``; negative entries are padding: as targets they
        are not counted, and as inputs they only precede other padding.
        """
        inputs, targets = window[:, :-1], window[:, 1:]
        inputs = inputs.masked_fill(inputs < 0, self.start)
        targets = targets.masked_fill(targets < 0, IGNORE)
        logits = self(inputs).float()
        total = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
        )
        # Summed and divided, rather than averaged, so that a window of padding alone
        # gives 0 instead of NaN; divided by the global batch's count under torchrun.
        nll = total / parallel.global_denominator((targets != IGNORE).sum())
        return nll, {"nll": nll.detach()}

    @torch.no_grad()
    def sample(
        self,
        batch: int,
        steps: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: bool = False,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """``(batch, steps)`` codes drawn after START, ``batch`` streams at once.

        Each code is drawn from the softmax of the logits divided by ``temperature``,
        with ``torch.multinomial`` on the CPU from ``generator``: the same model and
        generator state give the same codes. Beyond the context, attention slides over
        the last ``context`` positions. ``use_cache=False`` recomputes the window at
        every step: the reference for tests. The two draw the same codes for a
        one-layer model with relative attention at any length, and for any model
        within the context; past the context, deeper layers' cached keys keep the
        history they were computed with, which a recomputed window has lost.
        The codes are on the model's device.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if batch < 1 or steps < 0:
            raise ValueError(f"need batch >= 1 and steps >= 0, got {batch} and {steps}")
        device = self.transformer.embedding.weight.device
        was_training = self.training
        self.eval()
        cache = self.transformer.new_cache() if use_cache else None
        feed = torch.full((batch, 1), self.start, dtype=torch.long, device=device)
        codes = []
        bar = progress_bar(total=steps, desc="prior", unit="code", disable=not progress)
        try:
            for _ in range(steps):
                logits = self(feed, cache)[:, -1].float() / temperature
                probabilities = torch.softmax(logits, dim=-1).cpu()
                drawn = torch.multinomial(probabilities, 1, generator=generator).to(device)
                codes.append(drawn)
                if cache is not None:
                    feed = drawn
                else:
                    feed = torch.cat([feed, drawn], dim=1)[:, -self.context :]
                bar.update(1)
        finally:
            bar.close()
            self.train(was_training)
        if not codes:
            return torch.empty(batch, 0, dtype=torch.long, device=device)
        return torch.cat(codes, dim=1)


# --------------------------------------------------------------------------- spec


class PriorSpec(ModelSpec[CodePrior]):
    """The checkpoint records the layers, the codebook size, the optimiser's settings and
    a digest of the codes it learnt (so a checkpoint trained on other codes is not
    resumed from)."""

    name = "prior"
    autoregressive = True

    def checkpoint_config(
        self,
        model: MusicTransformerModelConfig,
        loop: TrainLoopConfig,
        codebook_size: int,
        seed: int,
        input_digest: str | None = None,
    ) -> dict[str, object]:
        return {
            "model": model.model_dump(mode="json"),
            "codebook_size": codebook_size,
            "optimizer": {
                "batch_size": loop.batch_size,
                "learning_rate": loop.learning_rate,
                "weight_decay": loop.weight_decay,
                "grad_clip": loop.grad_clip,
            },
            "seed": seed,
            "input_digest": input_digest,
        }

    def build(self, saved: Mapping[str, Any]) -> CodePrior:
        config = MusicTransformerModelConfig.model_validate(saved["model"])
        return CodePrior(config, int(saved["codebook_size"]))


SPEC = PriorSpec()
