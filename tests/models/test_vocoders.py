"""The families by name, and whole pieces rendered chunk by chunk in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavegen_core.config import ConditioningConfig, FlowConfig, GanConfig, WaveNetConfig
from wavegen_core.models.conditioning import ROLL_CHANNELS
from wavegen_core.models.vocoders import build_vocoder, render_pieces

HOP = 16
CONDITIONING = ConditioningConfig(hop_length=HOP, channels=8)


def _rolls(*frames: int) -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [(generator.random((ROLL_CHANNELS, n)) > 0.97).astype(np.float32) for n in frames]


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed: wavenet, flow, gan"):
        build_vocoder("diffusion", GanConfig(), CONDITIONING, 16000)


def test_gan_chunks_join_into_the_whole_piece() -> None:
    """Past the receptive field a chunk's context is all it needs: the join is seamless."""
    torch.manual_seed(0)
    config = GanConfig(
        initial_channels=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilations=[[1, 3]],
    )
    model = build_vocoder("gan", config, CONDITIONING, 16000).eval()
    (roll,) = _rolls(50)
    (chunked,) = render_pieces(
        "gan", model, [roll], chunk_frames=7, context_frames=12, progress=False
    )
    with torch.no_grad():
        whole = model.generate(torch.from_numpy(roll)[None])[0].numpy()
    assert chunked.shape == whole.shape == (50 * HOP,)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    (too_little,) = render_pieces("gan", model, [roll], chunk_frames=7, context_frames=0)
    assert not np.allclose(too_little, whole, atol=1e-5)


def test_every_family_renders_pieces_of_their_own_lengths() -> None:
    small = {
        "wavenet": WaveNetConfig(
            layers=3, dilation_cycle=3, residual_channels=8, gate_channels=16, skip_channels=8
        ),
        "flow": FlowConfig(flows=2, coupling_layers=2, coupling_channels=8),
        "gan": GanConfig(
            initial_channels=8,
            upsample_rates=[4, 4],
            upsample_kernel_sizes=[8, 8],
            resblock_kernel_sizes=[3],
            resblock_dilations=[[1]],
        ),
    }
    for family, config in small.items():
        torch.manual_seed(0)
        model = build_vocoder(family, config, CONDITIONING, 16000).eval()
        rendered = render_pieces(
            family,
            model,
            _rolls(9, 20),
            chunk_frames=8,
            context_frames=2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        assert [len(audio) for audio in rendered] == [9 * HOP, 20 * HOP], family
        assert all(np.isfinite(audio).all() and audio.dtype == np.float32 for audio in rendered)
