"""Relative attention with skewing against the materialised reference; causality; the KV cache."""

from __future__ import annotations

import pytest
import torch

from wavegen_core.models.symbolic import attention as attention_module
from wavegen_core.models.symbolic.attention import (
    CausalSelfAttention,
    KVCache,
    attention_logits,
    causal_mask,
    relative_logits_reference,
)


def _inputs(n: int, m: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, n, 5, dtype=torch.double, generator=generator)
    k = torch.randn(2, 3, m, 5, dtype=torch.double, generator=generator)
    e = torch.randn(3, m, 5, dtype=torch.double, generator=generator)
    return q.requires_grad_(), k.requires_grad_(), e.requires_grad_()


@pytest.mark.parametrize(("n", "m"), [(1, 1), (6, 6), (17, 17), (1, 9), (4, 11)])
def test_skewed_logits_equal_the_materialised_reference(n: int, m: int) -> None:
    q, k, e = _inputs(n, m)
    skewed = attention_logits(q, k, e)
    reference = relative_logits_reference(q, k, e)
    assert skewed.shape == (2, 3, n, m)
    assert torch.equal(torch.isinf(skewed), causal_mask(n, m, q.device).expand_as(skewed))
    torch.testing.assert_close(skewed, reference)
    # Hand check of one entry: query i (at position m - n + i) and key j see e_(j - i).
    i, j = n - 1, m // 2
    distance = j - (m - n + i)
    expected = q[1, 2, i] @ k[1, 2, j] + q[1, 2, i] @ e[2, m - 1 + distance]
    torch.testing.assert_close(skewed[1, 2, i, j], expected)


@pytest.mark.parametrize(("n", "m"), [(7, 7), (3, 8)])
def test_skewed_gradients_equal_the_reference_and_pass_gradcheck(n: int, m: int) -> None:
    q, k, e = _inputs(n, m, seed=1)
    weights = torch.randn(2, 3, n, m, dtype=torch.double)

    def objective(logits: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(logits, dim=-1) * weights).sum()

    ours = torch.autograd.grad(objective(attention_logits(q, k, e)), (q, k, e))
    theirs = torch.autograd.grad(objective(relative_logits_reference(q, k, e)), (q, k, e))
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference)
    assert torch.autograd.gradcheck(
        lambda q, k, e: torch.softmax(attention_logits(q, k, e), dim=-1), (q, k, e), fast_mode=True
    )


@pytest.mark.parametrize(("n", "m"), [(10, 10), (5, 13), (1, 7)])
def test_blocks_of_query_rows_give_the_same_logits_and_gradients(n, m, monkeypatch) -> None:
    monkeypatch.setattr(attention_module, "BLOCK_ROWS", 3)  # several blocks, a ragged last
    q, k, e = _inputs(n, m, seed=2)
    torch.testing.assert_close(attention_logits(q, k, e), relative_logits_reference(q, k, e))
    assert torch.autograd.gradcheck(
        lambda q, k, e: torch.softmax(attention_logits(q, k, e), dim=-1), (q, k, e), fast_mode=True
    )
    assert torch.autograd.gradcheck(
        lambda q, k: torch.softmax(attention_logits(q, k, None), dim=-1), (q, k), fast_mode=True
    )


@pytest.mark.parametrize("relative", [True, False])
def test_a_future_position_never_changes_an_earlier_output(relative: bool) -> None:
    torch.manual_seed(0)
    attention = CausalSelfAttention(16, 4, context=12, relative=relative, dropout=0.0).eval()
    x = torch.randn(2, 12, 16)
    changed = x.clone()
    changed[:, 7:] = torch.randn(2, 5, 16)
    before, after = attention(x), attention(changed)
    torch.testing.assert_close(before[:, :7], after[:, :7], rtol=0, atol=0)
    assert not torch.allclose(before[:, 7:], after[:, 7:])


@pytest.mark.parametrize("relative", [True, False])
def test_cached_steps_equal_the_full_forward(relative: bool) -> None:
    torch.manual_seed(1)
    attention = CausalSelfAttention(16, 4, context=10, relative=relative, dropout=0.0).eval()
    x = torch.randn(3, 10, 16)
    full = attention(x)
    cache = KVCache()
    # A 4-position prefix at once, then one position at a time.
    pieces = [attention(x[:, :4], cache)]
    pieces += [attention(x[:, t : t + 1], cache) for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-6)
    assert cache.length == 10 and cache.position == 10


def test_the_cache_slides_over_the_last_context_positions() -> None:
    torch.manual_seed(2)
    attention = CausalSelfAttention(8, 2, context=4, relative=True, dropout=0.0).eval()
    x = torch.randn(1, 9, 8)
    cache = KVCache()
    outputs = [attention(x[:, t : t + 1], cache) for t in range(9)]
    assert cache.length == 4 and cache.position == 9
    # The last step attends over positions 5..8 only: the same as a fresh window whose
    # keys were computed from those inputs (keys depend on their own input alone).
    window = attention(x[:, 5:9])
    torch.testing.assert_close(outputs[-1], window[:, -1:], rtol=1e-5, atol=1e-6)


def test_a_sequence_longer_than_the_context_is_refused() -> None:
    attention = CausalSelfAttention(8, 2, context=4, relative=True, dropout=0.0)
    with pytest.raises(ValueError, match="context of 4"):
        attention(torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match="multiple of n_heads"):
        CausalSelfAttention(10, 4, context=4, relative=True, dropout=0.0)
