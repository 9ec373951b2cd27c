"""The families by name, and whole pieces rendered chunk by chunk in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.families import SMALL_CONDITIONING, SMALL_HOP, SMALL_SECTIONS
from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_families, vocoder_spec


def _rolls(*frames: int) -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [(generator.random((ROLL_CHANNELS, n)) > 0.97).astype(np.float32) for n in frames]


def _build(family: str, config) -> torch.nn.Module:
    """A fresh model of ``family`` as training builds it: from its checkpoint config."""
    spec = vocoder_spec(family)
    return spec.build(spec.checkpoint_config(config, SMALL_CONDITIONING, 16000, seed=0))


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed: wavenet, flow, ddsp, gan"):
        vocoder_spec("diffusion")


def test_every_family_is_found_with_its_spec_and_loads_from_its_checkpoint(tmp_path) -> None:
    """The registry finds each family by its config class; a saved model loads as itself."""
    from wavegen_core.checkpoint import save_checkpoint
    from wavegen_core.models.vocoders.registry import load_vocoder

    specs = {family: vocoder_spec(family) for family in vocoder_families()}
    assert list(specs) == ["wavenet", "flow", "ddsp", "gan"]
    assert [spec.autoregressive for spec in specs.values()] == [True, False, False, False]
    assert [spec.whole_pieces for spec in specs.values()] == [True, False, True, False]
    for family, spec in specs.items():
        torch.manual_seed(0)
        saved = spec.checkpoint_config(SMALL_SECTIONS[family], SMALL_CONDITIONING, 16000, seed=0)
        model = spec.build(saved)
        optimisers = spec.optimisers(model, SMALL_SECTIONS[family].train, saved)
        save_checkpoint(
            tmp_path / f"{family}.pt",
            model,
            optimisers[0].torch_optimiser,
            step=0,
            config=saved,
            metrics={},
        )
        loaded = load_vocoder(tmp_path / f"{family}.pt")
        assert loaded.spec is spec and loaded.hop_length == SMALL_HOP and not loaded.model.training
        inference = spec.inference_state(model.state_dict())
        for name, tensor in loaded.model.state_dict().items():
            assert torch.equal(tensor, inference[name]), (family, name)


def test_gan_chunks_join_into_the_whole_piece() -> None:
    """Past the receptive field a chunk's context is all it needs: the join is seamless."""
    torch.manual_seed(0)
    model = _build("gan", SMALL_SECTIONS["gan"]).eval()
    (roll,) = _rolls(50)
    (chunked,) = render_pieces(
        vocoder_spec("gan"), model, [roll], chunk_frames=7, context_frames=12, progress=False
    )
    with torch.no_grad():
        whole = model.generate(torch.from_numpy(roll)[None])[0].numpy()
    assert chunked.shape == whole.shape == (50 * SMALL_HOP,)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    (too_little,) = render_pieces(
        vocoder_spec("gan"), model, [roll], chunk_frames=7, context_frames=0
    )
    assert not np.allclose(too_little, whole, atol=1e-5)


def test_every_family_renders_pieces_of_their_own_lengths() -> None:
    for family in vocoder_families():
        torch.manual_seed(0)
        model = _build(family, SMALL_SECTIONS[family]).eval()
        rendered = render_pieces(
            vocoder_spec(family),
            model,
            _rolls(9, 20),
            chunk_frames=8,
            context_frames=2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        assert [len(audio) for audio in rendered] == [9 * SMALL_HOP, 20 * SMALL_HOP], family
        assert all(np.isfinite(audio).all() and audio.dtype == np.float32 for audio in rendered)
