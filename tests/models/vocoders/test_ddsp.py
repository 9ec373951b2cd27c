"""The DDSP piano: its oscillators sit where the keys and B put them, notes start at their
onset and end with their decay, notes sum, chunks join into the whole, and it learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import note_roll
from wavegen_core.midi.rolls import KEY_COUNT
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.ddsp.config import DdspConfig
from wavegen_core.models.vocoders.ddsp.model import DdspPiano
from wavegen_core.models.vocoders.oscillators import STATE_FEATURE_PEDAL, hashed_noise

RATE = 16000
HOP = 128
A4 = 48  # key index of MIDI 69, 440 Hz
CONFIG = DdspConfig(
    harmonics=12,
    noise_bands=4,
    noise_taps=63,
    hidden=16,
    layers=1,
    reverb_seconds=0.05,
    release_seconds=0.2,
    chunk_frames=5,
)


def _model(config: DdspConfig = CONFIG, partial: int | None = None) -> DdspPiano:
    """A model; with ``partial``, one whose network puts (nearly) all of a note's energy
    in that partial (1 = the fundamental) and no noise, so the oscillators can be read."""
    torch.manual_seed(0)
    model = DdspPiano(config, ConditioningConfig(hop_length=HOP), RATE).eval()
    if partial is not None:
        with torch.no_grad():
            output = model.control.output
            output.weight.zero_()
            output.bias.fill_(-30.0)
            output.bias[0] = 0.0
            output.bias[partial] = 30.0
    return model


def _peak_hz(audio: torch.Tensor) -> float:
    signal = audio.numpy() * np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(signal))
    return float(np.fft.rfftfreq(len(signal), 1 / RATE)[spectrum.argmax()])


def test_one_note_peaks_at_its_fundamental() -> None:
    model = _model(partial=1)
    audio = model.generate(note_roll(100, (A4, 10, 90, 0.8)))[0]
    segment = audio[20 * HOP : 80 * HOP]
    bin_hz = RATE / len(segment)
    frequencies = model.partial_frequencies(torch.tensor([A4]))[0]
    assert abs(_peak_hz(segment) - frequencies[0].item()) <= bin_hz
    # A stiff string's fundamental is itself stretched by sqrt(1 + B).
    stretch = math.sqrt(1 + model.log_inharmonicity[A4].exp().item())
    assert frequencies[0].item() == pytest.approx(440.0 * stretch, rel=1e-12)


@pytest.mark.parametrize("inharmonicity", [1e-4, 2e-3])
def test_partials_sit_where_inharmonicity_puts_them(inharmonicity: float) -> None:
    """Partial 8 of a stiff string is at 8 f0 sqrt(1 + 64 B), not 8 f0."""
    model = _model(partial=8)
    with torch.no_grad():
        model.log_inharmonicity[A4 - 12] = math.log(inharmonicity)
    audio = model.generate(note_roll(120, (A4 - 12, 10, 110, 0.8)))[0]
    segment = audio[20 * HOP : 100 * HOP]
    expected = 8 * 220.0 * math.sqrt(1 + 64 * inharmonicity)
    assert abs(_peak_hz(segment) - expected) <= RATE / len(segment)


def test_partials_at_or_above_nyquist_are_silent() -> None:
    """The top key's partials are above 8 kHz from the 2nd on: asked to play its 4th, it
    plays nothing."""
    model = _model(partial=4)
    top = KEY_COUNT - 1
    assert model.partial_frequencies(torch.tensor([top]))[0, 3] > RATE / 2
    assert model.generate(note_roll(40, (top, 5, 35, 0.8))).abs().max() < 1e-6


def test_nothing_sounds_before_the_onset_and_only_decay_and_reverb_after_release() -> None:
    model = _model()
    onset, release = 30, 60
    audio = model.generate(note_roll(200, (A4, onset, release, 0.8)))[0]
    assert audio[: onset * HOP].abs().max() < 1e-6
    assert audio[onset * HOP : (onset + 5) * HOP].abs().max() > 1e-3
    decay_ends = release * HOP + round(CONFIG.release_seconds * RATE) + HOP
    assert audio[release * HOP : decay_ends].abs().max() > 1e-4  # the decay
    reverb_ends = decay_ends + round(CONFIG.reverb_seconds * RATE)
    assert audio[decay_ends:reverb_ends].abs().max() > 0  # the reverb's tail
    assert audio[reverb_ends:].abs().max() < 1e-6


def test_two_notes_sum() -> None:
    model = _model()
    first, second = (A4, 10, 70, 0.8), (A4 - 7, 30, 90, 0.5)
    both = model.generate(note_roll(120, first, second))
    alone = model.generate(note_roll(120, first)) + model.generate(note_roll(120, second))
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=0)


def test_the_sustain_pedal_reaches_the_network_while_notes_ring() -> None:
    model = _model()
    with torch.no_grad():  # a network that reads the pedal, as a trained one may
        model.control.input.weight[:, STATE_FEATURE_PEDAL] = 3.0 * torch.randn(CONFIG.hidden)
    plain = model.generate(note_roll(60, (A4, 5, 40, 0.8)))
    pedalled = model.generate(note_roll(60, (A4, 5, 40, 0.8), pedal=(20, 60)))
    # Before the pedal goes down the render is the same (frame 19 ramps to frame 20's
    # controls); while it is down it differs.
    assert torch.allclose(plain[:, : 19 * HOP], pedalled[:, : 19 * HOP], atol=1e-6)
    assert (plain[:, 20 * HOP : 40 * HOP] - pedalled[:, 20 * HOP : 40 * HOP]).abs().max() > 1e-3
    # A pedal with no note ringing makes no sound of its own.
    assert model.generate(note_roll(30, pedal=(0, 30))).abs().max() == 0.0


def test_a_chunked_render_equals_the_whole_render() -> None:
    notes = [(A4, 3, 40, 0.8), (A4 + 4, 17, 33, 0.6), (A4 - 20, 25, 60, 0.9)]
    chunked = _model(CONFIG).generate(note_roll(70, *notes))
    whole = _model(CONFIG.model_copy(update={"chunk_frames": 1000})).generate(note_roll(70, *notes))
    assert chunked.shape == whole.shape == (1, 70 * HOP)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


def test_the_noise_is_a_function_of_the_sample_index() -> None:
    whole = hashed_noise(100, 500, torch.device("cpu"))
    part = hashed_noise(350, 50, torch.device("cpu"))
    assert torch.equal(whole[250:300], part)
    assert -1.0 <= whole.min() < -0.8 and 0.8 < whole.max() < 1.0
    assert abs(whole.mean().item()) < 0.1


def test_training_on_a_struck_string_lowers_the_spectral_distance() -> None:
    """Targets: decaying harmonic tones of the roll's notes; 40 Adam steps on the
    multi-resolution STFT distance must bring the render closer."""
    model = _model().train()
    frames = 48
    roll = torch.cat(
        [
            note_roll(frames, (A4, 4, 40, 0.8)),
            note_roll(frames, (A4 - 5, 8, 30, 0.6), (A4 + 7, 8, 30, 0.6)),
        ]
    )
    time = torch.arange(frames * HOP) / RATE
    audio = torch.zeros(2, frames * HOP)
    for example, notes in enumerate([[(A4, 4)], [(A4 - 5, 8), (A4 + 7, 8)]]):
        for key, start in notes:
            f0 = 440.0 * 2 ** ((key - A4) / 12)
            t = (time - start * HOP / RATE).clamp(min=0)
            tone = sum(0.3 / k * torch.sin(2 * math.pi * k * f0 * t) for k in range(1, 5))
            audio[example] += tone * torch.exp(-3 * t) * (time >= start * HOP / RATE)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        optimiser.zero_grad()
        loss, _ = model.loss(audio, roll)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_loss_reads_history_frames_before_the_audio() -> None:
    """A roll longer than the audio: the frames before are history (a note's age)."""
    model = _model()
    roll = note_roll(30, (A4, 2, 28, 0.8))
    audio = torch.zeros(1, 20 * HOP)
    loss, _ = model.loss(audio, roll)  # 10 frames of history
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="does not end the roll"):
        model.loss(torch.zeros(1, 40 * HOP), roll)


def _on_batch(phase):
    """The loop's form of a phase loss, on a batch (audio, roll)."""
    return lambda model, batch, carry: phase(batch[0], batch[1], carry)


def test_adversarial_fine_tuning_joins_at_its_step_and_inference_loads_no_discriminator(
    tmp_path,
) -> None:
    """With adversarial_from = 3: two steps on the spectral distance alone (the
    discriminators do not move), then both networks train, the piano on the spectral
    distance plus the adversarial terms; the checkpoint keeps the discriminators for
    resuming and inference loads the piano alone, rendering what the trained one does."""
    from wavegen_core.models.vocoders.ddsp.model import SPEC
    from wavegen_core.param_types import TrainLoopConfig
    from wavegen_core.training.loop import fit

    config = CONFIG.model_copy(
        update={"adversarial_from": 3, "periods": [2, 3], "scales": 2, "discriminator_channels": 2}
    )
    saved = SPEC.checkpoint_config(config, ConditioningConfig(hop_length=HOP), RATE, seed=0)
    torch.manual_seed(0)
    model = SPEC.build(saved)
    assert model.mpd is not None and model.msd is not None
    frames = 40
    roll = note_roll(frames, (A4, 2, 30, 0.8))
    audio = 0.3 * torch.sin(2 * math.pi * 440.0 * torch.arange(frames * HOP) / RATE)[None]
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    watched: dict[int, dict] = {}
    phases = SPEC.phase_losses(model)
    assert phases is not None and set(phases) == {"discriminator", "piano"}

    def after(step: int) -> None:
        watched[step] = {n: p.detach().clone() for n, p in model.named_parameters()}

    loop = TrainLoopConfig(steps=4, batch_size=1, learning_rate=1e-2, log_every=1, eval_every=100)
    fit(
        model,
        SPEC.optimisers(model, loop, saved),
        loss_fn={name: _on_batch(phase) for name, phase in phases.items()},
        batch_for_step=lambda step: (audio, roll),
        loop=loop,
        checkpoint_path=tmp_path / "ddsp.pt",
        metrics_dir=tmp_path / "metrics",
        config=saved,
        device=torch.device("cpu"),
        on_step=after,
    )
    discriminator = [n for n in start if n.startswith(("mpd.", "msd."))]
    piano = [n for n in start if n not in discriminator]
    assert all(torch.equal(watched[2][n], start[n]) for n in discriminator)
    assert not all(torch.equal(watched[4][n], watched[2][n]) for n in discriminator)
    assert not all(torch.equal(watched[1][n], start[n]) for n in piano)
    curves = (tmp_path / "metrics").rglob("*.tsv")
    logged = "".join(path.read_text() for path in curves)
    assert "generator_adversarial" in logged and "feature_matching" in logged
    loaded = SPEC.load(tmp_path / "ddsp.pt")
    assert loaded.mpd is None and loaded.msd is None
    torch.testing.assert_close(loaded.generate(roll), model.eval().generate(roll))
