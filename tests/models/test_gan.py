"""The HiFi-GAN vocoder: shapes, LSGAN and feature-matching losses, gradients, learning."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.config import ConditioningConfig, GanConfig
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.conditioning import ROLL_CHANNELS
from wavegen_core.models.gan import (
    PERIOD_STRIDE,
    PERIOD_STRIDED_LAYERS,
    PERIOD_WIDTHS,
    SCALE_LAYERS,
    GanVocoder,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

SAMPLE_RATE = 4000
HOP = 16
CONFIG = GanConfig(
    initial_channels=16,
    upsample_rates=[4, 4],
    upsample_kernel_sizes=[8, 8],
    resblock_kernel_sizes=[3, 5],
    resblock_dilations=[[1, 3], [1, 3]],
    periods=[2, 3, 5],
    scales=3,
    discriminator_channels=4,
    mel_n_fft=128,
    mel_hop_length=32,
    mel_bins=16,
)
CONDITIONING = ConditioningConfig(hop_length=HOP, channels=8)


def _model(seed: int = 0) -> GanVocoder:
    torch.manual_seed(seed)
    return GanVocoder(CONFIG, CONDITIONING, SAMPLE_RATE)


def _random_roll(batch: int, frames: int) -> torch.Tensor:
    return (torch.rand(batch, ROLL_CHANNELS, frames) < 0.05).float()


def _ceil_div(length: int, stride: int) -> int:
    return -(-length // stride)


@pytest.mark.parametrize("frames", [1, 3, 7, 10])
def test_generated_length_is_frames_times_hop(frames: int) -> None:
    model = _model()
    audio = model.generate(_random_roll(2, frames))
    assert audio.shape == (2, frames * HOP)
    assert audio.abs().max() <= 1.0


def test_generation_is_deterministic() -> None:
    model = _model()
    roll = _random_roll(1, 5)
    first = model.generate(roll, generator=torch.Generator().manual_seed(1), temperature=0.5)
    assert torch.equal(first, model.generate(roll))
    with torch.no_grad():
        assert torch.allclose(first, model(roll))


def test_discriminators_return_one_score_and_feature_list_per_sub_discriminator() -> None:
    model = _model()
    samples = 301  # a multiple of no period, so the period discriminators pad
    audio = torch.randn(2, samples)
    channels = CONFIG.discriminator_channels

    scores, features = model.mpd(audio)
    assert len(scores) == len(features) == len(CONFIG.periods)
    for period, period_scores, maps in zip(CONFIG.periods, scores, features, strict=True):
        rows = _ceil_div(samples, period)
        for _ in range(PERIOD_STRIDED_LAYERS):
            rows = _ceil_div(rows, PERIOD_STRIDE)
        assert period_scores.shape == (2, rows * period)
        assert len(maps) == len(PERIOD_WIDTHS) + 1
        assert [m.shape[1] for m in maps] == [w * channels for w in PERIOD_WIDTHS] + [1]
        assert all(m.shape[-1] == period for m in maps)

    scores, features = model.msd(audio)
    assert len(scores) == len(features) == CONFIG.scales
    length = samples
    for scale, (scale_scores, maps) in enumerate(zip(scores, features, strict=True)):
        if scale > 0:
            length = length // 2 + 1  # AvgPool1d(4, 2, padding=2)
        positions = length
        for _, _, stride, _ in SCALE_LAYERS:
            positions = _ceil_div(positions, stride)
        assert scale_scores.shape == (2, positions)
        assert len(maps) == len(SCALE_LAYERS) + 1
        assert [m.shape[1] for m in maps] == [w * channels for w, *_ in SCALE_LAYERS] + [1]


def test_parameters_split_into_generator_and_discriminator_sides() -> None:
    model = _model()
    generator = {id(p) for p in model.generator_parameters()}
    discriminator = {id(p) for p in model.discriminator_parameters()}
    assert not generator & discriminator
    assert generator | discriminator == {id(p) for p in model.parameters()}
    assert {id(p) for p in model.conditioning.parameters()} <= generator


def test_one_step_updates_both_networks_and_each_loss_reaches_only_its_own() -> None:
    model = _model()
    roll = _random_roll(2, 12)
    audio = 0.5 * torch.randn(2, 12 * HOP).clamp(-1, 1)
    generator = list(model.generator_parameters())
    discriminator = list(model.discriminator_parameters())

    terms = model.loss_terms(audio, roll)
    generator_part = terms["generator_adversarial"] + terms["feature_matching"] + terms["mel_l1"]
    grads = torch.autograd.grad(
        terms["discriminator"], generator + discriminator, allow_unused=True, retain_graph=True
    )
    assert all(g is None for g in grads[: len(generator)])
    assert all(g is not None for g in grads[len(generator) :])
    grads = torch.autograd.grad(generator_part, generator + discriminator, allow_unused=True)
    assert all(g is not None for g in grads[: len(generator)])
    assert all(g is None for g in grads[len(generator) :])

    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss, extras = model.loss(audio, roll)
    assert set(extras) == {"discriminator", "generator_adversarial", "feature_matching", "mel_l1"}
    expected = (
        extras["discriminator"]
        + extras["generator_adversarial"]
        + CONFIG.feature_matching_weight * extras["feature_matching"]
        + CONFIG.mel_weight * extras["mel_l1"]
    )
    assert torch.allclose(loss.detach(), expected)
    loss.backward()
    optimizer.step()
    changed = {
        id(p) for p, old in zip(model.parameters(), before, strict=True) if not torch.equal(p, old)
    }
    assert {id(p) for p in generator} <= changed
    assert {id(p) for p in discriminator} <= changed


def test_loss_refuses_audio_that_the_roll_does_not_cover() -> None:
    with pytest.raises(ValueError, match="samples"):
        _model().loss(torch.zeros(1, 10 * HOP - 1), _random_roll(1, 10))


def test_least_squares_losses_on_hand_made_scores() -> None:
    real = [torch.tensor([1.0, 1.0]), torch.tensor([0.5])]
    fake = [torch.tensor([0.0, 0.0]), torch.tensor([0.5])]
    # D: (1 - 1)^2 + 0^2 for the first, (1 - 0.5)^2 + 0.5^2 for the second.
    assert discriminator_adversarial_loss(real, fake).item() == pytest.approx(0.5)
    # G: (1 - 0)^2 + (1 - 0.5)^2.
    assert generator_adversarial_loss(fake).item() == pytest.approx(1.25)
    # A perfect discriminator and a perfectly fooled one.
    assert discriminator_adversarial_loss(real[:1], fake[:1]).item() == 0.0
    assert generator_adversarial_loss([torch.ones(3)]).item() == 0.0


def test_feature_matching_is_a_sum_of_mean_absolute_differences() -> None:
    maps = [[torch.randn(2, 3, 5), torch.randn(2, 1, 4)], [torch.randn(2, 6)]]
    assert feature_matching_loss(maps, maps).item() == 0.0
    real = [[torch.zeros(2, 3)], [torch.zeros(4), torch.ones(5)]]
    fake = [[torch.ones(2, 3)], [torch.full((4,), -2.0), torch.ones(5)]]
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.0 + 2.0 + 0.0)


def _sine_batch(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Four excerpts, each two notes (a key, then another) rendered as sines."""
    keys = [(48, 52), (55, 60), (43, 57), (50, 45)]  # key indices, A0 = 0: 196 Hz to 440 Hz
    half = frames // 2
    rolls = torch.zeros(len(keys), 3, KEY_COUNT, frames)
    audio = torch.zeros(len(keys), frames * HOP)
    time = torch.arange(frames * HOP) / SAMPLE_RATE
    for example, pair in enumerate(keys):
        for note, key in enumerate(pair):
            first, last = note * half, frames if note else half
            frequency = 440.0 * 2 ** ((key + LOWEST_KEY - 69) / 12)
            rolls[example, 0, key, first] = 1.0
            rolls[example, 1, key, first:last] = 1.0
            rolls[example, 2, key, first:last] = 0.6
            span = slice(first * HOP, last * HOP)
            audio[example, span] = 0.6 * torch.sin(2 * math.pi * frequency * time[span])
    return audio, rolls.reshape(len(keys), ROLL_CHANNELS, frames)


def test_short_training_lowers_the_mel_distance() -> None:
    model = _model(seed=1)
    audio, roll = _sine_batch(frames=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, betas=CONFIG.adam_betas)

    def mel_l1() -> float:
        with torch.no_grad():
            return (model.mel(audio) - model.mel(model.generate(roll))).abs().mean().item()

    initial = mel_l1()
    for _ in range(60):
        optimizer.zero_grad()
        loss, _ = model.loss(audio, roll)
        loss.backward()
        optimizer.step()
    final = mel_l1()
    assert final < 0.7 * initial, (initial, final)
