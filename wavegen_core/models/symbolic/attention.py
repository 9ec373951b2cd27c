"""Causal multi-head self-attention, with relative global attention (Huang et al. 2019).

The one attention block of the project: the Music Transformer is built from it, and
the prior over VQ-VAE codes reuses it.

Relative attention adds to every logit ``q_i · k_j`` a term ``q_i · e_(j-i)`` that
depends on the distance ``j - i`` alone, with a learnt embedding ``e_r`` per head and
distance ``r = -(context - 1) .. 0``. Done directly, the embeddings are gathered into
an ``(L, L, D_h)`` tensor per head (:func:`relative_logits_reference`), O(L²·D) memory.
The paper's *skewing* computes ``Q E^T`` instead, ``(L, L)`` per head where column
``c`` holds distance ``c - (L - 1)``, and shifts row ``i`` left by ``L - 1 - i`` so
that column ``j`` holds distance ``j - i``; the only memory added to plain attention is
``E`` itself, O(L·D). The paper pads, reshapes and slices to shift; here the shift is
a strided view of ``Q E^T`` (row stride one less than its width) added straight into
the logits, and ``Q E^T`` is computed a block of query rows at a time, so what the
relative term adds to plain attention's memory is O(L·D) plus one block
(:class:`_RelativeLogits`).

Queries may be the last ``n`` of ``m`` positions (keys at positions ``0 .. m - 1``,
queries at ``m - n .. m - 1``): a full forward has ``n = m``, a cached decoding step
``n = 1``. The same skew serves both, so cached decoding gives the logits of a full
forward pass exactly (up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class KVCache:
    """One attention layer's keys and values so far, each ``(batch, heads, time, head_dim)``.

    ``position`` counts every position ever fed, including those that slid out of the
    window (absolute position encodings need it); the window keeps the last
    ``context`` positions.
    """

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None
    position: int = 0

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]


def causal_mask(n_queries: int, n_keys: int, device: torch.device) -> torch.Tensor:
    """``(n_queries, n_keys)`` bool, True where a query must not look: a key in its future.

    Query ``i`` sits at position ``n_keys - n_queries + i``, so it sees keys up to there.
    """
    past = n_keys - n_queries
    future = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return torch.triu(future, diagonal=past + 1)


# Query rows per block of the relative term: its transient memory is a block of
# ``rows x m`` per head instead of the ``n x m`` of the logits.
BLOCK_ROWS = 128


def _blocks(n: int) -> range:
    return range(0, n, BLOCK_ROWS)


def _skewed_block(qe: torch.Tensor, first: int, n: int, columns: int) -> torch.Tensor:
    """Rows ``first ..`` of the skewed logits, ``S[i, j] = qe[i, j - i + n - 1]``, as a view.

    ``qe`` ``(B', rows, m)`` is contiguous, rows ``first .. first + rows - 1`` of ``q E^T``;
    column ``c`` holds distance ``c - (m - 1)``. Element ``(i, j)`` of the block lies at
    ``(i - first)(m - 1) + j + (n - 1 - first)`` in ``qe``'s memory: a strided view. Only
    the first ``columns`` keys are viewed (those the block's last query may see), which
    keeps every index inside ``qe``; entries in a query's future come from the next row:
    garbage, to be masked.
    """
    rows, m = qe.shape[-2:]
    offset = qe.storage_offset() + n - 1 - first
    return qe.as_strided((qe.shape[0], rows, columns), (rows * m, m - 1, 1), offset)


def _unskew_block(grad: torch.Tensor, first: int, n: int, m: int) -> torch.Tensor:
    """The adjoint of :func:`_skewed_block`: the gradient of ``qe`` for one block of rows.

    ``grad`` ``(B', rows, m)`` must be zero in every query's future. It is written
    through the same strided view, cut to at most ``m - 1`` columns so that no two
    elements share memory; the one element left out (last query, last key: distance 0)
    is copied on its own.
    """
    rows = grad.shape[-2]
    columns = min(first + rows + m - n, m - 1)
    out = grad.new_zeros(grad.shape)
    _skewed_block(out, first, n, columns).copy_(grad[..., :columns])
    if first + rows == n:
        out[:, rows - 1, m - 1] = grad[:, rows - 1, m - 1]
    return out


class _RelativeLogits(torch.autograd.Function):
    """Masked ``q k^T + skew(q E^T)``, keeping nothing but the logits at ``(n, m)``.

    ``q`` ``(B, H, n, d)``, ``k`` ``(B, H, m, d)``, ``e`` ``(H, m, d)`` (row ``c`` =
    distance ``c - (m - 1)``) or None for plain attention; ``mask`` ``(n, m)`` True
    where the logit is -inf. The relative term and the backward pass go through
    blocks of :data:`BLOCK_ROWS` query rows, so beyond the logits (and their gradient)
    they hold O(rows · m) per head, linear in the length. Backward zeroes the masked
    positions' gradient, as the output there is a constant.

    Under autocast ``q`` may arrive in bf16 or fp16 while ``e`` (a parameter) is fp32:
    everything is computed in ``q``'s type, and each gradient returned in its input's.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        q: torch.Tensor,
        k: torch.Tensor,
        e: torch.Tensor | None,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        ctx.dtypes = (k.dtype, None if e is None else e.dtype)  # type: ignore[attr-defined]
        k = k.to(q.dtype)
        e = None if e is None else e.to(q.dtype)
        logits = torch.matmul(q, k.transpose(-1, -2))
        n, m = logits.shape[-2:]
        if e is not None:
            flat = logits.view(-1, n, m)
            for first in _blocks(n):
                last = min(first + BLOCK_ROWS, n)
                block = torch.matmul(q[..., first:last, :], e.transpose(-1, -2))
                block = block.reshape(-1, last - first, m)
                columns = last + m - n
                flat[:, first:last, :columns] += _skewed_block(block, first, n, columns)
        logits.masked_fill_(mask, -math.inf)
        ctx.save_for_backward(q, k, e, mask)  # type: ignore[arg-type]
        return logits

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        q, k, e, mask = ctx.saved_tensors  # type: ignore[attr-defined]
        n, m = grad.shape[-2:]
        grad_q = torch.empty_like(q)
        grad_k = torch.zeros_like(k)
        grad_e = None if e is None else torch.zeros_like(e)
        for first in _blocks(n):
            last = min(first + BLOCK_ROWS, n)
            rows = slice(first, last)
            block = grad[..., rows, :].masked_fill(mask[rows], 0.0)
            q_rows = q[..., rows, :]
            grad_q[..., rows, :] = torch.matmul(block, k)
            grad_k += torch.matmul(block.transpose(-1, -2), q_rows)
            if e is not None and grad_e is not None:
                flat = block.reshape(-1, last - first, m)
                grad_qe = _unskew_block(flat, first, n, m).view(block.shape)
                grad_q[..., rows, :] += torch.matmul(grad_qe, e)
                per_batch = torch.matmul(grad_qe.transpose(-1, -2), q_rows)
                grad_e += per_batch.sum(dim=tuple(range(per_batch.dim() - e.dim())))
        k_dtype, e_dtype = ctx.dtypes  # type: ignore[attr-defined]
        grad_k = grad_k.to(k_dtype)
        grad_e = None if grad_e is None else grad_e.to(e_dtype)
        return grad_q, grad_k, grad_e, None


def attention_logits(
    q: torch.Tensor, k: torch.Tensor, relative: torch.Tensor | None
) -> torch.Tensor:
    """Causally masked logits ``(B, H, n, m)`` of the last ``n`` of ``m`` positions.

    ``relative`` is ``(H, m, d)`` with row ``c`` the embedding of distance ``c - (m - 1)``,
    or None for plain dot-product logits. ``q`` should already carry the 1/sqrt(d) scale.
    """
    mask = causal_mask(q.shape[-2], k.shape[-2], q.device)
    logits: torch.Tensor = _RelativeLogits.apply(q, k, relative, mask)
    return logits


def relative_logits_reference(
    q: torch.Tensor, k: torch.Tensor, relative: torch.Tensor
) -> torch.Tensor:
    """The same logits as :func:`attention_logits`, with the embeddings materialised.

    Gathers ``e_(j-i)`` for every query-key pair into ``(H, n, m, d)``: O(L²·D) memory,
    the cost the skewing avoids. Kept as the reference for tests and benchmarks.
    """
    n, m = q.shape[-2], k.shape[-2]
    query_position = torch.arange(m - n, m, device=q.device)[:, None]
    distance = torch.arange(m, device=q.device)[None, :] - query_position  # j - i
    row = (distance + m - 1).clamp(min=0, max=m - 1)  # future entries: any row, masked
    gathered = relative[:, row]  # (H, n, m, d)
    logits = torch.matmul(q, k.transpose(-1, -2))
    logits = logits + torch.einsum("bhid,hijd->bhij", q, gathered)
    return logits.masked_fill(causal_mask(n, m, q.device), -math.inf)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, relative (skewed) or plain, with a KV cache.

    ``forward(x, cache)`` takes ``x`` ``(B, n, d_model)``: with no cache, ``n`` positions
    attend over themselves; with a :class:`KVCache`, they are the next ``n`` positions
    after the cached ones, and the cache is extended (keeping the last ``context``).
    """

    def __init__(
        self, d_model: int, n_heads: int, *, context: int, relative: bool, dropout: float
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.context = context
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        # On the output, not on the (L, L) attention weights: drawing a dropout mask
        # that large costs a quarter of a CPU training step.
        self.dropout = nn.Dropout(dropout)
        # Row r: the embedding of distance r - (context - 1), i.e. -(context - 1) .. 0.
        self.relative = (
            nn.Parameter(torch.randn(n_heads, context, self.head_dim) * self.head_dim**-0.5)
            if relative
            else None
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        batch, n, width = x.shape
        q, k, v = (
            part.view(batch, n, self.n_heads, self.head_dim).transpose(1, 2)
            for part in self.qkv(x).chunk(3, dim=-1)
        )
        if cache is not None:
            if cache.keys is not None and cache.values is not None:
                k = torch.cat([cache.keys, k], dim=2)
                v = torch.cat([cache.values, v], dim=2)
            cache.keys, cache.values = k[:, :, -self.context :], v[:, :, -self.context :]
            cache.position += n
            # Queries whose window starts before the kept keys see only the kept ones.
            k, v = k[:, :, -(self.context + n - 1) :], v[:, :, -(self.context + n - 1) :]
        m = k.shape[2]
        if m > self.context:
            raise ValueError(
                f"{m} positions exceed the attention context of {self.context}; "
                "feed longer sequences step by step through a KVCache"
            )
        relative = None if self.relative is None else self.relative[:, self.context - m :]
        q = q * self.head_dim**-0.5
        if n == 1:
            # A single query (a decoding step) sees every key and its skew is the
            # identity: the relative term is q·E[j], so one product with k + E does it.
            keys = k if relative is None else k + relative
            logits = torch.matmul(q, keys.transpose(-1, -2))
        else:
            logits = attention_logits(q, k, relative)
        weights = torch.softmax(logits, dim=-1)
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(batch, n, width)
        out: torch.Tensor = self.dropout(self.out(mixed))
        return out
