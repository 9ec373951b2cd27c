"""A VQ-VAE tier: hop lengths, both decoders, chunked encoding, saving and the hierarchy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavegen_core.checkpoint import save_checkpoint
from wavegen_core.models.hierarchy.config import QuantiserConfig, TierConfig, TierWaveNetConfig
from wavegen_core.models.hierarchy.stack import Hierarchy
from wavegen_core.models.hierarchy.vqvae import SPEC as TIER
from wavegen_core.models.hierarchy.vqvae import (
    Below,
    FeedforwardDecoder,
    TierEncoder,
    VQVAETier,
    encode_piece,
    halvings,
)

SMALL_WAVENET = TierWaveNetConfig(
    layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16,
    cond_channels=8,
)  # fmt: skip


def tier_config(number: int, hop: int, decoder: str = "feedforward", **values) -> TierConfig:
    source = "data/prepared" if number == 1 else f"data/codes/{number - 1}"
    return TierConfig(
        input=source, hop=hop, codebook_size=16, code_dim=8, width=8, depth=1,
        decoder=decoder, wavenet=SMALL_WAVENET, segment=hop * 64, **values,
    )  # fmt: skip


def make_tier(number: int, hop: int, decoder: str = "feedforward", below_codes: int = 16):
    torch.manual_seed(number)
    below = Below() if number == 1 else Below(torch.randn(below_codes, 6))
    return VQVAETier(number, tier_config(number, hop, decoder), QuantiserConfig(), below, 16000)


@pytest.mark.parametrize("hop", [2, 4, 8, 16, 32])
def test_encoder_divides_the_length_by_the_hop_and_the_decoder_restores_it(hop) -> None:
    encoder = TierEncoder(in_channels=3, code_dim=5, hop=hop, width=8, depth=2)
    decoder = FeedforwardDecoder(code_dim=5, out_channels=3, hop=hop, width=8, depth=2)
    x = torch.randn(2, 3, hop * 13)
    codes = encoder(x)
    assert codes.shape == (2, 5, 13)
    assert decoder(codes).shape == x.shape


def test_hops_must_be_powers_of_two_and_divide_the_input() -> None:
    for bad in (0, 1, 3, 6, 12):
        with pytest.raises(ValueError, match="power of two"):
            halvings(bad)
    encoder = TierEncoder(in_channels=1, code_dim=4, hop=8, width=4, depth=1)
    with pytest.raises(ValueError, match="not a multiple of the hop 8"):
        encoder(torch.randn(1, 1, 100))
    with pytest.raises(ValueError, match="segment=100 is not a multiple of hop=8"):
        TierConfig(input="data/prepared", hop=8, segment=100)


def test_receptive_field_bounds_what_a_perturbation_reaches() -> None:
    torch.manual_seed(0)
    encoder = TierEncoder(in_channels=1, code_dim=4, hop=8, width=8, depth=2).eval()
    x = torch.randn(1, 1, 8 * 64)
    at = 8 * 32
    moved = x.clone()
    moved[..., at] += 1.0
    with torch.no_grad():
        changed = (encoder(moved) - encoder(x)).abs().sum(dim=1)[0] > 0
    steps = changed.nonzero().flatten()
    # Codes whose own hop lies within the receptive field of the changed sample.
    reach = encoder.receptive_field
    assert steps.min() * 8 >= at - reach - 7 and steps.max() * 8 <= at + reach


@pytest.mark.parametrize("decoder", ["feedforward", "wavenet"])
def test_tier_one_encodes_audio_and_decodes_back_to_the_same_length(decoder) -> None:
    tier = make_tier(1, hop=4, decoder=decoder).eval()
    audio = 0.5 * torch.sin(torch.arange(2 * 256, dtype=torch.float32) / 5).view(2, 256)
    codes = tier.encode(audio)
    assert codes.shape == (2, 64) and codes.dtype == torch.int64
    assert int(codes.max()) < 16
    decoded = tier.decode(codes[:, :8], generator=torch.Generator().manual_seed(0))
    assert decoded.shape == (2, 32) and decoded.dtype == torch.float32
    assert decoded.abs().max() <= 1.0


@pytest.mark.parametrize("decoder", ["feedforward", "wavenet"])
def test_upper_tier_reads_the_code_vectors_below_and_decodes_to_codes(decoder) -> None:
    tier = make_tier(2, hop=2, decoder=decoder, below_codes=12).eval()
    below = torch.randint(0, 12, (3, 40))
    inputs = tier.inputs(below)
    assert inputs.shape == (3, 6, 40)
    assert torch.equal(inputs[1, :, 7], tier.codebook_below[below[1, 7]])
    codes = tier.encode(below)
    assert codes.shape == (3, 20)
    decoded = tier.decode(codes, generator=torch.Generator().manual_seed(0))
    assert decoded.shape == (3, 40) and decoded.dtype == torch.int64
    assert int(decoded.min()) >= 0 and int(decoded.max()) < 12


@pytest.mark.parametrize("decoder", ["feedforward", "wavenet"])
def test_a_few_steps_lower_the_loss_of_each_decoder(decoder) -> None:
    tier = make_tier(1, hop=4, decoder=decoder)
    optimiser = torch.optim.Adam(tier.parameters(), lr=2e-3 if decoder == "feedforward" else 1e-2)
    # The spectral loss needs more than its largest FFT's half window (1,024 samples).
    t = torch.arange(1280 if decoder == "feedforward" else 512, dtype=torch.float32)
    audio = torch.stack([0.4 * torch.sin(t / p) for p in (3.0, 7.0)])
    losses = []
    for _ in range(20):
        loss, extras = tier.loss(audio)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        assert 0.0 < float(extras["usage"]) <= 1.0 and float(extras["perplexity"]) >= 1.0
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses


def test_whole_piece_encoding_in_chunks_equals_one_pass() -> None:
    tier = make_tier(1, hop=8).eval()
    audio = (0.3 * np.sin(np.arange(8 * 300 + 5) / 4.0)).astype(np.float32)
    chunked = encode_piece(tier, audio, chunk_codes=32)
    assert chunked.shape == (301,)  # ceil(2,405 / 8): the end is padded
    padded = np.zeros(301 * 8, dtype=np.float32)
    padded[: len(audio)] = audio
    whole = tier.encode(torch.from_numpy(padded)[None])[0].numpy()
    assert np.array_equal(chunked, whole)


def test_a_saved_tier_loads_back_and_encodes_the_same(tmp_path) -> None:
    tier = make_tier(2, hop=4, below_codes=10)
    below = torch.randint(0, 10, (2, 64))
    tier.train()
    tier.loss(below)  # k-means and one EMA update change the codebook buffers
    config = TIER.checkpoint_config(
        2, tier.config, QuantiserConfig(), Below(tier.codebook_below), sample_rate=16000,
        seed=0, input_digest="x",
    )  # fmt: skip
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(
        path, tier, torch.optim.Adam(tier.parameters()), step=1, config=config, metrics={}
    )
    loaded = TIER.load(path)
    assert not loaded.training
    assert torch.equal(loaded.codebook_below, tier.codebook_below)
    assert torch.equal(loaded.encode(below), tier.encode(below))


def test_the_hierarchy_decodes_top_codes_down_to_audio_through_every_tier() -> None:
    one = make_tier(1, hop=4).eval()
    two = VQVAETier(
        2, tier_config(2, 2), QuantiserConfig(), Below(one.quantiser.codebook), 16000
    ).eval()
    hierarchy = Hierarchy([one, two])
    assert hierarchy.total_hop(2) == 8
    audio = 0.3 * torch.randn(1, 8 * 20)
    codes = hierarchy.encode(audio, up_to=2)
    assert [c.shape for c in codes] == [(1, 40), (1, 20)]
    assert torch.equal(codes[1], two.encode(codes[0]))  # tier 2 reads tier 1's codes
    decoded = hierarchy.decode(codes[1], tier=2)
    assert decoded.audio.shape == (1, 160)
    assert [c.shape for c in decoded.codes] == [(1, 40), (1, 20)]
    assert torch.equal(decoded.codes[1], codes[1])
    assert torch.equal(decoded.audio, one.decode(decoded.codes[0]))
