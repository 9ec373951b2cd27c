"""The WaveNet vocoder: causality, receptive field, output distributions, the generation
paths against each other and against the naive reference, and a short real training."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.wavenet import generation as wavenet_generation
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig
from wavegen_core.models.vocoders.wavenet.generation import GENERATION_METHODS
from wavegen_core.models.vocoders.wavenet.model import (
    LOGISTIC_BINS,
    WaveNetVocoder,
    logistic_mixture_log_prob,
    mu_law_decode,
    mu_law_encode,
)

OUTPUTS = ("mu_law", "logistic_mixture")
HOP = 8
# The fused paths; numba is a dependency, so its compiled loop is always tested.
FAST_METHODS = ("fused", "numba")


class Bar:
    """Stands in for the progress bar: records its total and its updates."""

    def __init__(self, *, total: int, desc: str, unit: str) -> None:
        self.total, self.unit, self.closed = total, unit, False
        self.updates: list[int] = []

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


def _model(
    output: str = "mu_law",
    *,
    layers: int = 4,
    dilation_cycle: int = 2,
    kernel_size: int = 2,
    channels: int = 8,
    upsample: str = "transposed",
) -> WaveNetVocoder:
    torch.manual_seed(0)
    config = WaveNetConfig(
        layers=layers,
        dilation_cycle=dilation_cycle,
        kernel_size=kernel_size,
        residual_channels=channels,
        gate_channels=2 * channels,
        skip_channels=channels,
        output=output,
        mixtures=3,
    )
    conditioning = ConditioningConfig(hop_length=HOP, channels=4, layers=1, upsample=upsample)
    return WaveNetVocoder(config, conditioning, sample_rate=16000).eval()


def _roll(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, ROLL_CHANNELS, frames, generator=generator) < 0.05).float()


def _audio(batch: int, samples: int, seed: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, samples, generator=generator) * 1.6 - 0.8


# --------------------------------------------------------------------------- the network


def test_receptive_field_counts_the_input_convolution_and_every_dilation() -> None:
    # Input convolution (kernel 2): 2 samples; dilations 1, 2, 1, 2 add 6.
    assert _model(layers=4, dilation_cycle=2).receptive_field == 8
    # Kernel 3 doubles what each layer adds: 2 + 2 * (1 + 2 + 4).
    assert _model(layers=3, dilation_cycle=3, kernel_size=3).receptive_field == 16


@pytest.mark.parametrize("output", OUTPUTS)
def test_changing_a_sample_never_changes_the_predictions_up_to_it(output: str) -> None:
    model = _model(output)
    audio, roll = _audio(2, 5 * HOP), _roll(2, 5)
    changed = audio.clone()
    changed[:, 17] = -changed[:, 17]
    with torch.no_grad():
        before, after = model(audio, roll), model(changed, roll)
    # Position t predicts sample t from samples before it: 0..17 cannot see sample 17.
    torch.testing.assert_close(before[..., :18], after[..., :18], rtol=0, atol=0)
    assert not torch.equal(before[..., 18], after[..., 18])


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_a_sample_reaches_exactly_the_next_receptive_field_predictions(
    output: str, kernel_size: int
) -> None:
    model = _model(output, layers=3, dilation_cycle=3, kernel_size=kernel_size)
    field = model.receptive_field
    frames = -(-(field + 20) // HOP)
    audio, roll = _audio(4, frames * HOP), _roll(4, frames)
    position = 5
    # The output's ReLUs can hide a change at one place in one context; over four
    # contexts and two changes, what the sample reaches is what the paths allow.
    moved = torch.zeros(frames * HOP, dtype=torch.bool)
    with torch.no_grad():
        before = model(audio, roll)
        for value in (-0.9, 0.9):
            changed = audio.clone()
            changed[:, position] = value
            moved |= (before != model(changed, roll)).any(dim=1).any(dim=0)
    reached = moved.nonzero().flatten().tolist()
    assert reached == list(range(position + 1, position + field + 1))


def test_loss_is_the_mean_nll_and_checks_lengths() -> None:
    model = _model()
    audio, roll = _audio(2, 3 * HOP), _roll(2, 3)
    loss, extras = model.loss(audio, roll)
    assert loss.dim() == 0 and torch.isfinite(loss)
    torch.testing.assert_close(extras["nll"], loss.detach())
    # An untrained softmax over 256 classes: about log(256) nats.
    assert abs(loss.item() - math.log(256)) < 0.5
    with pytest.raises(ValueError, match="audio of 23 samples does not end the roll"):
        model.loss(audio[:, :-1], roll)


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_teacher_forced_nll_is_the_brute_force_one_sample_at_a_time(output: str) -> None:
    """The loss equals, sample by sample, minus the log-probability that the generation
    path (the naive one: the network on the true past alone) gives the true sample,
    averaged: the figure the overfit check reads is what sampling would face one step
    ahead."""
    model = _model(output)
    with torch.no_grad():  # weights large enough that every input moves the output
        generator = torch.Generator().manual_seed(3)
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    audio, roll = _audio(2, 4 * HOP), _roll(2, 4)
    loss, _ = model.loss(audio, roll)
    cond = model.conditioning(roll)
    targets = model.targets(audio)
    previous = torch.cat([torch.full_like(targets[:, :1], model.silence), targets[:, :-1]], 1)
    terms = []
    with torch.no_grad():
        for t in range(audio.shape[-1]):
            features = model.input_features(previous[:, : t + 1])
            output_t = model.network(features, cond[..., : t + 1])[..., -1]
            if output == "mu_law":
                log_p = torch.log_softmax(output_t, dim=-1).gather(1, targets[:, t : t + 1])[:, 0]
            else:
                log_p = logistic_mixture_log_prob(output_t[..., None], audio[:, t : t + 1])[:, 0]
            terms.append(-log_p)
    torch.testing.assert_close(loss.detach(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- distributions


def test_mu_law_round_trip_is_within_half_a_step() -> None:
    audio = torch.linspace(-1, 1, 10001)
    classes = mu_law_encode(audio)
    assert classes.min() == 0 and classes.max() == 255
    assert mu_law_encode(torch.zeros(())) == 128
    # Every class decodes to a level that encodes back to it.
    levels = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(levels)), levels)
    # In the companded domain the error is at most half of a step of 2 / 255.
    companded = torch.sign(audio) * torch.log1p(255 * audio.abs()) / math.log1p(255)
    decoded = mu_law_decode(classes)
    back = torch.sign(decoded) * torch.log1p(255 * decoded.abs()) / math.log1p(255)
    assert (companded - back).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("log_scale", [-2.0, -7.0])
def test_logistic_mixture_puts_a_total_mass_of_one_on_the_16_bit_bins(log_scale: float) -> None:
    # Three components, one of them at the lower edge so the tail bin matters.
    params = torch.tensor([0.3, -1.0, 0.5, -0.99, 0.2, 0.999, log_scale, -3.0, -5.0])
    centres = torch.linspace(-1, 1, LOGISTIC_BINS)
    log_prob = logistic_mixture_log_prob(
        params[None, :, None].expand(1, 9, LOGISTIC_BINS), centres[None]
    )
    assert torch.isfinite(log_prob).all()
    assert abs(log_prob.double().exp().sum().item() - 1.0) < 2e-3


def test_logistic_mixture_loss_falls_when_fitting_a_constant() -> None:
    model = _model("logistic_mixture").train()
    audio, roll = torch.full((2, 4 * HOP), 0.3), _roll(2, 4)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss, _ = model.loss(audio, roll)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    # A mixture fitting a constant sharpens towards a spike, and Adam jolts on the way:
    # the last steps' mean, not the last step, must sit well below the start.
    assert sum(losses[-10:]) / 10 < losses[0] - 2.0


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("method", ["queue", *FAST_METHODS])
def test_cached_generation_draws_the_naive_samples(output: str, method: str) -> None:
    model = _model(output, kernel_size=3 if method == "queue" else 2)
    roll = _roll(3, 6)
    cached = model.generate(
        roll, generator=torch.Generator().manual_seed(7), method=method, block_frames=4
    )
    naive = model.generate_naive(roll, generator=torch.Generator().manual_seed(7))
    assert cached.shape == naive.shape == (3, 6 * HOP)
    if output == "mu_law":
        assert torch.equal(cached, naive)
    else:
        torch.testing.assert_close(cached, naive, rtol=0, atol=1e-5)
    assert cached.abs().max() <= 1.0 and cached.std() > 0


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("method", FAST_METHODS)
def test_fused_generation_equals_the_queue_path(output: str, method: str) -> None:
    # Wider and deeper than the naive comparison, with a temperature: long queues.
    model = _model(output, layers=8, dilation_cycle=4, kernel_size=3, channels=16)
    roll = _roll(2, 24)
    kwargs = {"temperature": 0.8, "block_frames": 10}
    queue = model.generate(
        roll, generator=torch.Generator().manual_seed(3), method="queue", **kwargs
    )
    fast = model.generate(roll, generator=torch.Generator().manual_seed(3), method=method, **kwargs)
    if output == "mu_law":
        assert torch.equal(fast, queue)
    else:
        torch.testing.assert_close(fast, queue, rtol=0, atol=1e-4)


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
def test_conditioning_in_blocks_equals_upsampling_the_whole_roll(upsample: str) -> None:
    model = _model(upsample=upsample)
    roll = _roll(2, 11)
    whole = model.conditioning(roll)
    for block_frames in (1, 3, 11, 32):
        blocks = torch.cat(list(model.conditioning_blocks(roll, block_frames)), dim=-1)
        torch.testing.assert_close(blocks, whole, rtol=1e-5, atol=1e-6)


def test_generation_in_blocks_equals_generation_in_one_block() -> None:
    model = _model()
    roll = _roll(2, 9)
    audio = {
        block_frames: model.generate(
            roll, generator=torch.Generator().manual_seed(5), block_frames=block_frames
        )
        for block_frames in (2, 9)
    }
    assert audio[2].shape == (2, 9 * HOP)
    assert torch.equal(audio[2], audio[9])


def test_generation_checks_its_arguments_and_shows_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _model()
    with pytest.raises(ValueError, match="roll must be"):
        model.generate(torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="method must be one of"):
        model.generate(_roll(1, 1), method="magic")
    assert set(GENERATION_METHODS) == {"auto", "queue", "fused", "numba"}
    bars: list[Bar] = []

    def progress_bar(**kwargs: object) -> Bar:
        bars.append(Bar(**kwargs))  # type: ignore[arg-type]
        return bars[-1]

    monkeypatch.setattr(wavenet_generation, "progress_bar", progress_bar)
    model.generate(_roll(1, 3), progress=True, block_frames=2)
    assert len(bars) == 1 and bars[0].total == 3 * HOP and bars[0].unit == "sample"
    assert bars[0].updates == [2 * HOP, HOP] and bars[0].closed


# --------------------------------------------------------------------------- training


def test_a_short_training_on_a_pitch_following_sine_lowers_the_loss() -> None:
    """A sine whose pitch follows the one key held in each frame of the roll."""
    model = _model(layers=6, dilation_cycle=3, channels=16).train()
    generator = torch.Generator().manual_seed(0)
    batch, frames = 8, 8
    keys = torch.randint(30, 60, (batch, frames), generator=generator)
    roll = torch.zeros(batch, ROLL_CHANNELS, frames)
    sounding = 88 + keys  # the "sounding" channel of each key
    roll.scatter_(1, sounding[:, None, :], 1.0)
    frequency = 440.0 * 2 ** ((keys + 21 - 69) / 12)  # key index 0 is A0 (MIDI 21)
    phase_step = (2 * math.pi * frequency / 16000).repeat_interleave(HOP, dim=1)
    audio = 0.5 * torch.sin(torch.cumsum(phase_step, dim=1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss, _ = model.loss(audio, roll)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    # From about log(256) = 5.5 nats to about 1.2 here; half is a clear margin.
    assert losses[-1] < 0.5 * losses[0]
