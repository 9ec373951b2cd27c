"""The WaveGlow flow: exact inversion, log-determinants against brute-force Jacobians,
the likelihood, sampling, a short real training run and config validation."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.flow.config import FlowConfig
from wavegen_core.models.vocoders.flow.model import (
    AffineCoupling,
    FlowVocoder,
    Invertible1x1Conv,
    squeeze,
    unsqueeze,
)

HOP = 8
# The flow's own mechanics, on the roll alone (the excitation has tests of its own).
TINY_CONDITIONING = ConditioningConfig(
    hop_length=HOP, channels=4, layers=1, kernel_size=3, excitation="none"
)
TINY_FLOWS = {
    "early outputs": FlowConfig(
        groups=4, flows=3, early_every=2, early_channels=2, coupling_layers=2, coupling_channels=8
    ),
    "no early outputs": FlowConfig(
        groups=4, flows=3, early_every=1, early_channels=0, coupling_layers=2, coupling_channels=8
    ),
    # 8 -> 7 -> 6 -> 5 channels: odd couplings, one early channel before every flow.
    "odd couplings": FlowConfig(
        groups=8, flows=4, early_every=1, early_channels=1, coupling_layers=1, coupling_channels=6
    ),
}


def _randomise_couplings(model: FlowVocoder, seed: int = 0) -> None:
    """Non-zero coupling end layers (the zero init makes every coupling the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k in range(model.config.flows):
            end = model.flow_step(k)[1].end
            end.weight.copy_(0.3 * torch.randn(end.weight.shape, generator=generator))
            assert end.bias is not None
            end.bias.copy_(0.3 * torch.randn(end.bias.shape, generator=generator))


def _model(config: FlowConfig, *, randomised: bool = True) -> FlowVocoder:
    torch.manual_seed(0)
    model = FlowVocoder(config, TINY_CONDITIONING, sample_rate=16000).double()
    if randomised:
        _randomise_couplings(model)
    return model


def _roll(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, ROLL_CHANNELS, frames, generator=generator) > 0.8).double()


def test_squeeze_groups_consecutive_samples() -> None:
    signal = torch.arange(2 * 12.0).reshape(1, 2, 12)
    grouped = squeeze(signal, 4)
    assert grouped.shape == (1, 8, 3)
    # Channel c * groups + g at step j holds sample j * groups + g of channel c.
    assert grouped[0, 1 * 4 + 2, 1] == signal[0, 1, 1 * 4 + 2]
    assert torch.equal(unsqueeze(squeeze(signal[:, :1], 4)), signal[:, 0])


@pytest.mark.parametrize("name", list(TINY_FLOWS))
def test_inverse_undoes_forward(name: str) -> None:
    model = _model(TINY_FLOWS[name])
    roll = _roll(2, 5)
    audio = 0.5 * torch.randn(2, 5 * HOP, dtype=torch.double)
    z, log_det = model(audio, roll)
    assert z.shape == (2, model.groups, 5 * HOP // model.groups)
    assert log_det.shape == (2,)
    assert not torch.allclose(z, squeeze(audio.unsqueeze(1), model.groups))
    torch.testing.assert_close(model.inverse(z, roll), audio, rtol=0, atol=1e-12)


def test_a_fresh_flow_is_a_rotation_with_log_det_zero() -> None:
    model = _model(TINY_FLOWS["early outputs"], randomised=False)
    audio = torch.randn(3, 2 * HOP, dtype=torch.double)
    z, log_det = model(audio, _roll(3, 2))
    # The weights are orthogonal to float32 rounding (initialised before ``.double()``).
    torch.testing.assert_close(log_det, torch.zeros(3, dtype=torch.double), rtol=0, atol=1e-5)
    torch.testing.assert_close(z.pow(2).sum(dim=(1, 2)), audio.pow(2).sum(dim=1))


@pytest.mark.parametrize("name", list(TINY_FLOWS))
def test_log_det_of_the_whole_flow_matches_the_jacobian(name: str) -> None:
    model = _model(TINY_FLOWS[name])
    roll = _roll(1, 2)
    audio = 0.5 * torch.randn(1, 2 * HOP, dtype=torch.double)
    jacobian = torch.autograd.functional.jacobian(
        lambda x: model(x.unsqueeze(0), roll)[0].flatten(), audio[0]
    )
    assert jacobian.shape == (2 * HOP, 2 * HOP)
    _, log_det = model(audio, roll)
    torch.testing.assert_close(log_det[0], torch.linalg.slogdet(jacobian).logabsdet)


def test_log_det_of_one_invertible_conv_matches_the_jacobian() -> None:
    torch.manual_seed(0)  # the test must not depend on what ran before it
    conv = Invertible1x1Conv(4).double()
    with torch.no_grad():  # away from a rotation, so that log|det W| is not 0
        conv.weight.add_(0.4 * torch.randn(4, 4, dtype=torch.double))
    x = torch.randn(1, 4, 3, dtype=torch.double)
    jacobian = torch.autograd.functional.jacobian(lambda v: conv(v)[0].flatten(), x)
    _, log_det = conv(x)
    expected = torch.linalg.slogdet(jacobian.reshape(12, 12)).logabsdet
    assert abs(float(expected)) > 0.1
    torch.testing.assert_close(log_det[0], expected)
    torch.testing.assert_close(conv.inverse(conv(x)[0]), x)


def test_log_det_of_one_coupling_matches_the_jacobian() -> None:
    torch.manual_seed(2)
    coupling = AffineCoupling(5, 3, layers=2, hidden_channels=6, kernel_size=3).double()
    with torch.no_grad():
        coupling.end.weight.normal_(std=0.5)
    x = torch.randn(1, 5, 4, dtype=torch.double)
    cond = torch.randn(1, 3, 4, dtype=torch.double)
    jacobian = torch.autograd.functional.jacobian(lambda v: coupling(v, cond)[0].flatten(), x)
    y, log_det = coupling(x, cond)
    expected = torch.linalg.slogdet(jacobian.reshape(20, 20)).logabsdet
    assert abs(float(expected)) > 0.1
    torch.testing.assert_close(log_det[0], expected)
    torch.testing.assert_close(y[:, :2], x[:, :2])  # the first half passes through
    torch.testing.assert_close(coupling.inverse(y, cond), x)


def test_loss_is_the_gaussian_nll_per_sample() -> None:
    config = TINY_FLOWS["early outputs"].model_copy(update={"sigma": 0.5})
    model = _model(config)
    roll = _roll(2, 3)
    audio = 0.3 * torch.randn(2, 3 * HOP, dtype=torch.double)
    loss, extras = model.loss(audio, roll)
    z, log_det = model(audio, roll)
    samples = 3 * HOP
    log_density = (
        torch.distributions.Normal(0.0, 0.5).log_prob(z).sum(dim=(1, 2)) + log_det
    ) / samples
    torch.testing.assert_close(loss, -log_density.mean())
    torch.testing.assert_close(extras["nll"], loss.detach())
    torch.testing.assert_close(extras["log_det"], (log_det / samples).mean())
    torch.testing.assert_close(extras["prior"] - extras["log_det"], extras["nll"])


def test_generate_shape_seeding_and_temperature() -> None:
    model = _model(TINY_FLOWS["early outputs"])
    roll = _roll(2, 6)

    def sample(seed: int, temperature: float | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return model.generate(roll, generator=generator, temperature=temperature)

    first = sample(3)
    assert first.shape == (2, 6 * HOP)
    assert float(first.abs().max()) <= 1.0
    assert torch.equal(first, sample(3))
    assert not torch.equal(first, sample(4))
    mean_path = sample(3, temperature=0.0)
    assert torch.equal(mean_path, sample(4, temperature=0.0))
    zeros = torch.zeros(2, model.groups, 6 * HOP // model.groups, dtype=torch.double)
    torch.testing.assert_close(mean_path, model.inverse(zeros, roll).clamp(-1, 1))


def test_sampling_tends_to_the_deterministic_path_as_sigma_goes_to_zero() -> None:
    """z ~ N(0, (sigma T)^2): as T -> 0 the samples of any seed close in on inverse(0)."""
    model = _model(TINY_FLOWS["odd couplings"])
    roll = _roll(1, 6)

    def sample(seed: int, temperature: float) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return model.generate(roll, generator=generator, temperature=temperature)

    mean_path = sample(0, 0.0)
    gaps = [float((sample(1, t) - mean_path).abs().max()) for t in (1e-1, 1e-3, 1e-6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5, gaps


def test_generate_draws_at_sigma_times_temperature() -> None:
    # A fresh flow is a rotation of each group, so its samples are N(0, (sigma * T)^2).
    config = TINY_FLOWS["early outputs"].model_copy(update={"sigma": 0.8})
    model = _model(config, randomised=False)
    audio = model.generate(
        _roll(4, 250), generator=torch.Generator().manual_seed(0), temperature=0.25
    )
    assert abs(float(audio.std()) - 0.2) < 0.01
    # Without a temperature: WaveGlow's 0.6.
    default = model.generate(_roll(4, 250), generator=torch.Generator().manual_seed(0))
    assert abs(float(default.std()) - 0.48) < 0.02


def _pitch_following_sines(
    roll_keys: torch.Tensor, generator: torch.Generator, hop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sounding key per frame -> its sine (continuous phase) plus a little noise."""
    batch, frames = roll_keys.shape
    roll = torch.zeros(batch, ROLL_CHANNELS, frames)
    sounding = 88 + roll_keys  # the ``sounding`` feature of each key
    roll.scatter_(1, sounding.unsqueeze(1), 1.0)
    # Periods of 12 to 40 samples over the 20 keys used.
    period = 12.0 * 2.0 ** (roll_keys.float() / 12.0)
    increment = (2 * math.pi / period).repeat_interleave(hop, dim=1)
    phase = torch.rand(batch, 1, generator=generator) * 2 * math.pi + increment.cumsum(dim=1)
    noise = 0.01 * torch.randn(batch, frames * hop, generator=generator)
    return 0.5 * torch.sin(phase) + noise, roll


def test_short_training_lowers_the_nll() -> None:
    torch.manual_seed(0)
    hop, frames = 16, 8
    model = FlowVocoder(
        FlowConfig(
            groups=4,
            flows=2,
            early_every=2,
            early_channels=2,
            coupling_layers=3,
            coupling_channels=16,
        ),
        ConditioningConfig(hop_length=hop, channels=8, layers=1, kernel_size=3, excitation="none"),
        sample_rate=16000,
    )
    generator = torch.Generator().manual_seed(0)

    def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        keys = torch.randint(0, 20, (size, frames // 4), generator=generator)
        return _pitch_following_sines(keys.repeat_interleave(4, dim=1), generator, hop)

    held_out = batch(16)
    with torch.no_grad():
        before = float(model.loss(*held_out)[0])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss, _ = model.loss(*batch(8))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(model.loss(*held_out)[0])
        audio, roll = held_out
        mismatched = float(model.loss(audio, roll.roll(1, dims=0))[0])
    assert before == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5 * 0.125, abs=0.05)
    print(f"held-out NLL {before:.3f} -> {after:.3f} nats per sample")
    assert after < before - 1.0, (before, after)
    # The conditioning is used: another excerpt's roll explains the audio worse.
    assert mismatched > after + 0.1, (after, mismatched)


def test_hop_not_a_multiple_of_groups_is_refused() -> None:
    with pytest.raises(ValueError, match=r"flow\.groups = 8 does not divide .*hop_length = 12"):
        FlowVocoder(FlowConfig(groups=8), ConditioningConfig(hop_length=12), sample_rate=16000)
