"""The VQ-VAE quantiser: straight-through gradients, EMA codebook, restarts, k-means, measures."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.models.hierarchy.quantiser import VectorQuantiser, kmeans, perplexity, usage


def _quantiser(codebook: list[list[float]], **options: float | bool) -> VectorQuantiser:
    quantiser = VectorQuantiser(len(codebook), len(codebook[0]), **options)  # type: ignore[arg-type]
    with torch.no_grad():
        quantiser.codebook.copy_(torch.tensor(codebook))
        quantiser.embed_sum.copy_(torch.tensor(codebook))
    return quantiser


def test_codes_are_the_nearest_and_the_gradient_passes_straight_through() -> None:
    quantiser = _quantiser([[0.0, 0.0], [1.0, 1.0], [-2.0, 3.0]], commitment=0.25).eval()
    z = torch.tensor([[[0.1, 0.9, -1.5], [0.2, 1.2, 2.5]]], requires_grad=True)  # (1, 2, 3)
    out = quantiser(z)
    assert out.codes.tolist() == [[0, 1, 2]]
    torch.testing.assert_close(out.quantised.detach(), quantiser.lookup(out.codes))
    weights = torch.randn(1, 2, 3)
    (out.quantised * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)  # the decoder's gradient reaches z unchanged
    # The commitment loss is beta * mean squared distance to the (fixed) codes.
    expected = 0.25 * ((z.detach() - quantiser.lookup(out.codes)) ** 2).mean()
    torch.testing.assert_close(out.commitment_loss, expected)
    z.grad = None
    quantiser(z).commitment_loss.backward()
    torch.testing.assert_close(z.grad, 0.25 * 2 * (z.detach() - out.quantised.detach()) / 6)


def test_ema_update_moves_each_code_toward_the_vectors_assigned_to_it() -> None:
    quantiser = _quantiser([[0.0], [10.0]], decay=0.8, restart_threshold=0.0).train()
    z = torch.tensor([[[1.0, 1.2, 0.8, 9.0]]])  # three near code 0, one near code 1
    before = quantiser.codebook.clone()
    for _ in range(30):
        quantiser(z)
    after = quantiser.codebook[:, 0]
    assert abs(after[0] - 1.0) < 0.01 < abs(before[0, 0] - 1.0)
    assert abs(after[1] - 9.0) < 0.01 < abs(before[1, 0] - 9.0)
    assert quantiser.restarts == 0


def test_eval_mode_leaves_the_codebook_alone() -> None:
    quantiser = _quantiser([[0.0], [10.0]]).eval()
    quantiser(torch.tensor([[[1.0, 9.0]]]))
    assert quantiser.codebook[:, 0].tolist() == [0.0, 10.0]


def test_a_code_nothing_uses_is_restarted_at_an_encoder_output() -> None:
    # Code 2 sits far from all the data: its usage decays and it is moved onto the data.
    quantiser = _quantiser([[0.0], [5.0], [1000.0]], decay=0.5, restart_threshold=0.3).train()
    generator = torch.Generator().manual_seed(0)
    z = torch.tensor([[[-1.0, 0.5, 4.0, 6.0, 2.5, 3.0]]])
    restarted_at = None
    for step in range(10):
        out = quantiser(z, generator)
        if quantiser.restarts:
            restarted_at = step
            break
    assert quantiser.restarts == 1
    assert restarted_at == 1  # once its usage had decayed below the threshold: 1, .5, .25
    assert float(quantiser.codebook[2, 0]) in z.flatten().tolist()  # moved onto the data
    assert float(out.usage) == 1.0  # the restarted code already takes that vector
    quantiser(z, generator)
    assert quantiser.restarts == 0


def test_usage_and_perplexity_of_hand_made_assignments() -> None:
    codes = torch.tensor([[0, 0, 1, 1]])
    assert float(usage(codes, 4)) == 0.5
    assert float(perplexity(codes, 4)) == pytest.approx(2.0)
    assert float(perplexity(torch.arange(8), 8)) == pytest.approx(8.0)
    assert float(perplexity(torch.zeros(5, dtype=torch.long), 8)) == pytest.approx(1.0)
    skewed = torch.tensor([0, 0, 0, 1])  # p = (3/4, 1/4)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert float(perplexity(skewed, 2)) == pytest.approx(math.exp(entropy))


def test_kmeans_initialisation_finds_the_clusters_of_the_first_batch() -> None:
    generator = torch.Generator().manual_seed(3)
    centres = torch.tensor([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0], [0.0, -6.0]])
    points = centres.repeat_interleave(50, dim=0) + 0.1 * torch.randn(200, 2, generator=generator)
    quantiser = VectorQuantiser(4, 2, kmeans_init=True, decay=0.99).train()
    out = quantiser(points.t()[None], generator)
    assert not bool(quantiser.needs_init)
    # Each cluster's centre has a code on it, within the noise.
    distances = torch.cdist(centres, quantiser.codebook)
    assert float(distances.min(dim=1).values.max()) < 0.1
    assert sorted(distances.argmin(dim=1).tolist()) == [0, 1, 2, 3]
    assert float(out.usage) == 1.0 and float(out.perplexity) == pytest.approx(4.0, rel=1e-3)
    # The choice is part of the state: a restored quantiser does not initialise again.
    restored = VectorQuantiser(4, 2, kmeans_init=True)
    restored.load_state_dict(quantiser.state_dict())
    assert not bool(restored.needs_init)
    torch.testing.assert_close(restored.codebook, quantiser.codebook)


def test_kmeans_with_fewer_vectors_than_clusters_reuses_them() -> None:
    vectors = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    centres = kmeans(vectors, 5, iterations=3, generator=torch.Generator().manual_seed(0))
    assert centres.shape == (5, 2)
    assert {tuple(row) for row in centres.tolist()} <= {(0.0, 1.0), (2.0, 3.0)}


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 codes"):
        VectorQuantiser(1, 4)
    with pytest.raises(ValueError, match=r"expected \(batch, 4, time\)"):
        VectorQuantiser(8, 4)(torch.zeros(2, 3, 5))
