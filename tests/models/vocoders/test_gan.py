"""The HiFi-GAN vocoder: shapes, LSGAN and feature-matching losses, gradients, learning."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.data.pairs import KEY_CHANNELS, ROLL_CHANNELS
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY
from wavegen_core.models.vocoders.adversarial import (
    PERIOD_STRIDE,
    PERIOD_STRIDED_LAYERS,
    PERIOD_WIDTHS,
    SCALE_LAYERS,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.gan.config import GanConfig
from wavegen_core.models.vocoders.gan.model import GanVocoder

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


def test_each_step_reaches_only_its_own_network() -> None:
    """The discriminator step's loss has gradients in the discriminators alone (the
    generated audio is detached); the generator step's in the generator alone (the
    discriminators' parameters are detached)."""
    model = _model()
    roll = _random_roll(2, 12)
    audio = 0.5 * torch.randn(2, 12 * HOP).clamp(-1, 1)
    generator = list(model.generator_parameters())
    discriminator = list(model.discriminator_parameters())
    carry: dict = {}
    d_loss, d_terms = model.discriminator_loss(audio, roll, carry)
    assert set(d_terms) == {"discriminator"} and carry["fake"].requires_grad
    grads = torch.autograd.grad(d_loss, generator + discriminator, allow_unused=True)
    assert all(g is None for g in grads[: len(generator)])
    assert all(g is not None for g in grads[len(generator) :])
    g_loss, g_terms = model.generator_loss(audio, roll, carry)
    assert set(g_terms) == {"generator_adversarial", "feature_matching", "mel_l1"}
    expected = (
        g_terms["generator_adversarial"]
        + CONFIG.feature_matching_weight * g_terms["feature_matching"]
        + CONFIG.mel_weight * g_terms["mel_l1"]
    )
    assert torch.allclose(g_loss.detach(), expected)
    grads = torch.autograd.grad(g_loss, generator + discriminator, allow_unused=True)
    assert all(g is not None for g in grads[: len(generator)])
    assert all(g is None for g in grads[len(generator) :])


def test_the_spec_gives_each_network_its_own_decaying_adamw_and_inference_no_discriminator(
    tmp_path,
) -> None:
    """HiFi-GAN's optimisation: AdamW (0.8, 0.99) per network, each with its own
    exponential decay; the checkpoint keeps the discriminators, inference drops them."""
    from wavegen_core.checkpoint import save_checkpoint
    from wavegen_core.models.vocoders.gan.model import SPEC

    section = CONFIG.model_copy(update={"lr_decay": 0.5, "lr_decay_every": 2})
    saved = SPEC.checkpoint_config(section, CONDITIONING, SAMPLE_RATE, seed=0)
    torch.manual_seed(0)
    model = SPEC.build(saved)
    optimisers = SPEC.optimisers(model, section.train, saved)
    assert [o.name for o in optimisers] == ["discriminator", "generator"]
    discriminator, generator = optimisers
    assert {id(p) for p in discriminator.torch_optimiser.param_groups[0]["params"]} == {
        id(p) for p in model.discriminator_parameters()
    }
    assert {id(p) for p in generator.torch_optimiser.param_groups[0]["params"]} == {
        id(p) for p in model.generator_parameters()
    }
    for entry in optimisers:
        assert isinstance(entry.torch_optimiser, torch.optim.AdamW)
        assert entry.torch_optimiser.param_groups[0]["betas"] == (0.8, 0.99)
        assert entry.scheduler is not None
        for _ in range(4):
            entry.torch_optimiser.step()
            entry.scheduler.step()
        assert entry.torch_optimiser.param_groups[0]["lr"] == pytest.approx(
            section.train.learning_rate * 0.25
        )
    path = tmp_path / "gan.pt"
    save_checkpoint(
        path,
        model,
        {o.name: o.torch_optimiser for o in optimisers},
        step=0,
        config=saved,
        metrics={},
        scheduler={o.name: o.scheduler for o in optimisers},
    )
    loaded = SPEC.load(path)
    assert loaded.mpd is None and loaded.msd is None
    assert not any(name.startswith(("mpd.", "msd.")) for name in loaded.state_dict())
    roll = _random_roll(1, 5)
    with torch.no_grad():
        assert torch.equal(loaded.generate(roll), model.eval().generate(roll))
    with pytest.raises(RuntimeError, match="built for inference"):
        loaded.discriminator_parameters()


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
    keyed = rolls.reshape(len(keys), KEY_CHANNELS, frames)
    return audio, torch.cat([keyed, torch.zeros(len(keys), 1, frames)], dim=1)


def test_short_training_lowers_the_mel_distance() -> None:
    model = _model(seed=1)
    audio, roll = _sine_batch(frames=16)
    optimisers = [
        torch.optim.AdamW(parameters, lr=5e-3, betas=CONFIG.adam_betas)
        for parameters in (model.discriminator_parameters(), model.generator_parameters())
    ]

    def mel_l1() -> float:
        with torch.no_grad():
            return (model.mel(audio) - model.mel(model.generate(roll))).abs().mean().item()

    initial = mel_l1()
    for _ in range(60):
        carry: dict = {}
        for optimiser, step_loss in zip(
            optimisers, (model.discriminator_loss, model.generator_loss), strict=True
        ):
            optimiser.zero_grad()
            loss, _ = step_loss(audio, roll, carry)
            loss.backward()
            optimiser.step()
    final = mel_l1()
    assert final < 0.7 * initial, (initial, final)
