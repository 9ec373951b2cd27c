"""The learnt hierarchy put together: tiers 1..n and the prior over the top tier's codes.

Encoding goes up (audio -> codes_1 -> ... -> codes_n), decoding comes down: the prior
draws codes_n, tier n's decoder turns them into codes_n-1 (p(codes_n-1 | codes_n)),
and so on to tier 1's decoder, which gives the waveform (p(x | codes_1)). Each tier was
trained on its own, on what the tier below's `encode` wrote (Dieleman et al. 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wavegen_core.models.hierarchy.prior import CodePrior
from wavegen_core.models.hierarchy.vqvae import VQVAETier


@dataclass
class Decoded:
    """A waveform decoded from some tier, and the codes of every tier on the way down
    (``codes[k - 1]`` is tier k's, (batch, steps_k))."""

    audio: torch.Tensor
    codes: list[torch.Tensor]


class Hierarchy:
    """Trained tiers (``tiers[k - 1]`` is tier k) and, for sampling, the prior."""

    def __init__(self, tiers: list[VQVAETier], prior: CodePrior | None = None) -> None:
        if not tiers:
            raise ValueError("a hierarchy needs at least one tier")
        self.tiers = tiers
        self.prior = prior

    @property
    def top(self) -> int:
        return len(self.tiers)

    def total_hop(self, tier: int) -> int:
        """Samples per code of ``tier``."""
        return math.prod(t.hop for t in self.tiers[:tier])

    def encode(self, audio: torch.Tensor, up_to: int) -> list[torch.Tensor]:
        """Audio (batch, samples), a multiple of ``total_hop(up_to)``, -> the codes of
        tiers 1..up_to."""
        codes, level = [], audio
        for tier in self.tiers[:up_to]:
            level = tier.encode(level)
            codes.append(level)
        return codes

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        tier: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        progress: bool = False,
    ) -> Decoded:
        """Codes of ``tier`` (batch, steps) decoded down to audio (batch, steps * hop)."""
        path = [codes]
        level = codes
        for number in range(tier, 0, -1):
            level = self.tiers[number - 1].decode(
                level, generator=generator, temperature=temperature, progress=progress
            )
            if number > 1:
                path.insert(0, level)
        return Decoded(level, path)

    @torch.no_grad()
    def sample(
        self,
        batch: int,
        seconds: float,
        sample_rate: int,
        *,
        seed: int,
        temperature: float = 1.0,
        decoder_temperature: float = 1.0,
        progress: bool = False,
    ) -> Decoded:
        """``batch`` new pieces of at least ``seconds``: top codes from the prior, then
        decoded tier by tier. The prior draws on the CPU and the decoders on their
        device, each from its own generator seeded with ``seed``."""
        if self.prior is None:
            raise ValueError("sampling needs the prior over the top tier's codes")
        steps = max(math.ceil(seconds * sample_rate / self.total_hop(self.top)), 1)
        top = self.prior.sample(
            batch,
            steps,
            temperature=temperature,
            generator=torch.Generator().manual_seed(seed),
            progress=progress,
        )
        device = self.tiers[-1].codebook_below.device
        return self.decode(
            top.to(device),
            self.top,
            generator=torch.Generator(device=device).manual_seed(seed),
            temperature=decoder_temperature,
            progress=progress,
        )
