"""Log-mel frames as the likelihood families' conditioning (``vocoder.mel``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.families import SMALL_CONDITIONING, SMALL_HOP, SMALL_SECTIONS
from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.conditioning import (
    ConditioningNetwork,
    MelFrames,
    check_mel_source,
)
from wavegen_core.models.vocoders.config import ConditioningConfig, MelFramesConfig
from wavegen_core.models.vocoders.registry import vocoder_spec

RATE = 16000
MEL = MelFramesConfig(bins=16, n_fft=64, fmax=7000.0)
TAKES_MEL = ["wavenet", "flow"]


def _sine(seconds: float, frequency: float) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE)) / RATE
    return 0.5 * torch.sin(2 * torch.pi * frequency * t)


def test_mel_frames_line_up_with_the_roll_and_silence_is_the_floor() -> None:
    """n hops of audio give n frames; a tone that starts halfway lights the frames of
    the second half only, in its own band; silence is the floor value."""
    frames = MelFrames(MEL.model_copy(update={"n_fft": 512}), RATE, hop_length=256)
    audio = torch.cat([torch.zeros(16 * 256), _sine(16 * 256 / RATE, 1000.0)])[None]
    mel = frames(audio)
    assert mel.shape == (1, MEL.bins, 32)
    energy = mel[0].max(dim=0).values
    assert torch.allclose(mel[0, :, :14], torch.full((MEL.bins, 14), frames.floor), atol=1e-4)
    assert (energy[18:] > energy[:14].max() + 1.0).all()
    loudest = mel[0, :, 24].argmax().item()
    low, high = frames.spectrogram.filterbank[loudest].nonzero()[[0, -1], 0] * RATE / 512
    assert low <= 1000.0 <= high


def test_attach_appends_the_mel_after_the_roll_with_the_floor_over_the_history() -> None:
    frames = MelFrames(MEL, RATE, hop_length=SMALL_HOP)
    roll = torch.rand(2, ROLL_CHANNELS, 12)
    audio = 0.1 * torch.randn(2, 8 * SMALL_HOP)
    joined = frames.attach(roll, audio)
    assert joined.shape == (2, ROLL_CHANNELS + MEL.bins, 12)
    assert torch.equal(joined[:, :ROLL_CHANNELS], roll)
    assert torch.all(joined[:, ROLL_CHANNELS:, :4] == frames.floor)
    assert torch.allclose(joined[:, ROLL_CHANNELS:, 4:], frames(audio))
    with pytest.raises(ValueError, match="longer than the roll"):
        frames.attach(roll[..., :4], audio)


@pytest.mark.parametrize(("inputs", "reads_roll"), [("mel", False), ("roll_and_mel", True)])
def test_the_encoder_reads_the_roll_only_beside_the_mel(inputs, reads_roll) -> None:
    torch.manual_seed(0)
    network = ConditioningNetwork(
        ConditioningConfig(hop_length=SMALL_HOP, channels=8, excitation="none"),
        sample_rate=RATE,
        mel=MelFramesConfig(bins=16, n_fft=64, inputs=inputs),
    )
    frames = torch.randn(1, ROLL_CHANNELS + 16, 6)
    other_roll = frames.clone()
    other_roll[:, :ROLL_CHANNELS] = torch.rand(1, ROLL_CHANNELS, 6)
    other_mel = frames.clone()
    other_mel[:, ROLL_CHANNELS:] += 1.0
    same = torch.equal(network(frames), network(other_roll))
    assert same is not reads_roll
    assert not torch.equal(network(frames), network(other_mel))


@pytest.mark.parametrize("family", TAKES_MEL)
def test_a_mel_conditioned_family_builds_trains_and_generates_the_right_length(family) -> None:
    """From its checkpoint config (which records the mel), the model learns one excerpt
    from its own mel in a few steps and renders audio of frames x hop samples."""
    torch.manual_seed(0)
    spec = vocoder_spec(family)
    conditioning = SMALL_CONDITIONING.model_copy(update={"excitation": "none"})
    saved = spec.checkpoint_config(SMALL_SECTIONS[family], conditioning, RATE, 0, mel=MEL)
    assert saved["mel"]["bins"] == MEL.bins
    model = spec.build(saved)
    frames = model.conditioning.mel_frames
    assert frames is not None
    audio = (_sine(24 * SMALL_HOP / RATE, 440.0) * torch.linspace(1, 0.2, 24 * SMALL_HOP))[None]
    roll = frames.attach(torch.zeros(1, ROLL_CHANNELS, 24), audio)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss, _ = model.loss(audio, roll)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1 * abs(np.mean(losses[:3])), losses
    rebuilt = spec.build(saved)
    rebuilt.load_state_dict(model.state_dict())
    generated = rebuilt.eval().generate(roll, generator=torch.Generator().manual_seed(0))
    assert generated.shape == (1, 24 * SMALL_HOP)
    assert torch.isfinite(generated).all()
    roll_only = spec.build(spec.checkpoint_config(SMALL_SECTIONS[family], conditioning, RATE, 0))
    assert roll_only.conditioning.mel_frames is None
    with pytest.raises(RuntimeError):
        roll_only.load_state_dict(model.state_dict())


@pytest.mark.parametrize(
    ("source", "named"),
    [((22050, 256), ["22050 Hz", "16000 Hz"]), ((16000, 128), ["hop of 128", "hop of 256"])],
)
def test_a_mel_source_at_another_rate_or_hop_is_refused_naming_both(source, named) -> None:
    check_mel_source(16000, 256, 16000, 256, "ddsp", "flow")
    with pytest.raises(ValueError) as caught:
        check_mel_source(*source, 16000, 256, "ddsp (models/vocoder/ddsp/checkpoint.pt)", "flow")
    message = str(caught.value)
    assert all(text in message for text in named), message
    assert "ddsp (models/vocoder/ddsp/checkpoint.pt)" in message and "flow" in message
