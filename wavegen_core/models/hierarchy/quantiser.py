"""The vector quantiser every VQ-VAE tier uses: EMA codebook, commitment, dead-code restarts.

Van den Oord et al. 2017 (VQ-VAE), with the codebook learnt by exponential moving
averages of the encoder outputs assigned to each code (their appendix A.1) rather than
by a codebook loss, a commitment loss ``beta * |z - sg(e)|^2`` that keeps the encoder
close to its codes, and the straight-through estimator (the decoder's gradient passes
to the encoder unchanged). From Jukebox (Dhariwal et al. 2020, section 3.2): codes
whose moving-average usage falls below a threshold are restarted at encoder outputs of
the current batch, so the codebook does not collapse to a handful of codes; and the
codebook may start from k-means on the first training batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wavegen_core import parallel


@dataclass
class Quantised:
    """What the quantiser returns for encoder outputs ``z`` of shape (batch, dim, time)."""

    quantised: torch.Tensor  # (batch, dim, time): the codes' vectors, straight-through to z
    codes: torch.Tensor  # (batch, time) int64
    commitment_loss: torch.Tensor  # scalar, already weighted by beta
    perplexity: torch.Tensor  # scalar: exp(entropy) of the batch's code histogram
    usage: torch.Tensor  # scalar: fraction of the codebook the batch used


def code_histogram(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code occurs in ``codes`` (any shape), as a float (codebook_size,)."""
    return torch.bincount(codes.reshape(-1), minlength=codebook_size).float()


def perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp of the entropy of the code histogram: the number of equally used codes that
    would give the same entropy (``codebook_size`` at best, 1 for a single code)."""
    return histogram_perplexity(code_histogram(codes, codebook_size))


def histogram_perplexity(counts: torch.Tensor) -> torch.Tensor:
    """:func:`perplexity` of codes whose histogram is ``counts`` (float, per code)."""
    probabilities = counts / counts.sum().clamp_min(1.0)
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum()
    return torch.exp(entropy)


def usage(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """The fraction of the codebook that occurs in ``codes``."""
    return histogram_usage(code_histogram(codes, codebook_size))


def histogram_usage(counts: torch.Tensor) -> torch.Tensor:
    """:func:`usage` of codes whose histogram is ``counts``."""
    return (counts > 0).float().mean()


def kmeans(
    vectors: torch.Tensor, clusters: int, iterations: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Lloyd's k-means from randomly drawn vectors; an emptied cluster keeps its centre.

    With fewer vectors than clusters the starting centres repeat vectors (drawn with
    replacement) and the duplicates stay where they are: the dead-code restarts move
    them once training sees more data.
    """
    count = vectors.shape[0]
    if count >= clusters:
        first = torch.randperm(count, generator=generator, device="cpu")[:clusters]
    else:
        first = torch.randint(0, count, (clusters,), generator=generator, device="cpu")
    centres = vectors[first.to(vectors.device)].clone()
    for _ in range(iterations):
        assignment = torch.cdist(vectors, centres).argmin(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, assignment, vectors)
        counts = torch.bincount(assignment, minlength=clusters).to(vectors.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


class VectorQuantiser(nn.Module):
    """Nearest-code quantisation of (batch, dim, time) vectors with an EMA-learnt codebook.

    In training mode each forward pass also updates the codebook (moving averages of
    the assigned encoder outputs with decay ``decay``, Laplace-smoothed counts), then
    restarts every code whose moving-average count is below ``restart_threshold`` at a
    random encoder output of the batch. The codebook is a buffer, not a parameter: no
    optimiser touches it, and it is saved and restored with the model's state.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        commitment: float = 0.02,
        decay: float = 0.99,
        restart_threshold: float = 1.0,
        kmeans_init: bool = False,
        kmeans_iterations: int = 10,
        epsilon: float = 1e-5,
    ) -> None:
        super().__init__()
        if codebook_size < 2 or dim < 1:
            raise ValueError(f"need at least 2 codes of dim >= 1, got {codebook_size} x {dim}")
        self.codebook_size = codebook_size
        self.dim = dim
        self.commitment = commitment
        self.decay = decay
        self.restart_threshold = restart_threshold
        self.kmeans_iterations = kmeans_iterations
        self.epsilon = epsilon
        codebook = torch.randn(codebook_size, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", codebook.clone())
        # k-means pending until the first training batch (a buffer: a resumed run must
        # not redo it).
        self.register_buffer("needs_init", torch.tensor(kmeans_init))
        self.restarts = 0  # codes restarted by the last training pass

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    needs_init: torch.Tensor

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """The index of the nearest code (squared Euclidean) for each row of ``flat``."""
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True)
            - 2 * flat @ self.codebook.t()
            + self.codebook.pow(2).sum(dim=1)[None, :]
        )
        return distances.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (batch, time) -> their vectors (batch, dim, time)."""
        return self.codebook[codes].transpose(1, 2)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> Quantised:
        if z.dim() != 3 or z.shape[1] != self.dim:
            raise ValueError(f"expected (batch, {self.dim}, time), got {tuple(z.shape)}")
        batch, _, steps = z.shape
        flat = z.detach().transpose(1, 2).reshape(-1, self.dim).to(self.codebook.dtype)
        if self.training and bool(self.needs_init):
            self._initialise(flat, generator)
        codes = self.nearest(flat)
        if self.training:
            self._update(flat, codes, generator)
            codes = self.nearest(flat)  # against the codebook the decoder will see
        quantised = self.codebook[codes].view(batch, steps, self.dim).transpose(1, 2)
        quantised = quantised.to(z.dtype)
        commitment_loss = self.commitment * nn.functional.mse_loss(z, quantised.detach())
        codes = codes.view(batch, steps)
        return Quantised(
            quantised=z + (quantised - z).detach(),
            codes=codes,
            commitment_loss=commitment_loss,
            perplexity=perplexity(codes, self.codebook_size),
            usage=usage(codes, self.codebook_size),
        )

    @torch.no_grad()
    def _initialise(self, flat: torch.Tensor, generator: torch.Generator | None) -> None:
        centres = kmeans(flat, self.codebook_size, self.kmeans_iterations, generator)
        self.codebook.copy_(centres)
        self.embed_sum.copy_(centres)
        self.cluster_size.fill_(1.0)
        self.needs_init.fill_(False)
        # Under torchrun: rank 0's centres (from its share of the batch) for every rank.
        parallel.broadcast_([self.codebook, self.embed_sum], parallel.current())

    @torch.no_grad()
    def _update(
        self, flat: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None
    ) -> None:
        counts = torch.bincount(codes, minlength=self.codebook_size).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)
        world = parallel.current()
        # Under torchrun the statistics are the global batch's, as in one process.
        parallel.sum_over_ranks_([counts, sums], world)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (
            (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        )
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < self.restart_threshold
        self.restarts = int(dead.sum())
        if self.restarts:
            picks = torch.randint(0, flat.shape[0], (self.restarts,), generator=generator)
            fresh = flat[picks.to(flat.device)]
            self.codebook[dead] = fresh
            self.embed_sum[dead] = fresh * self.restart_threshold
            self.cluster_size[dead] = self.restart_threshold
            # Each rank drew from its own share of the batch: rank 0's draws win.
            parallel.broadcast_([self.codebook, self.embed_sum], world)
