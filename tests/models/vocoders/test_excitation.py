"""The harmonic excitation: its partials sit at a chord's harmonics, it sounds only while
the notes do, chunks with their history equal the whole, and every neural family takes
it and still learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import note_roll
from tests.families import SMALL_CONDITIONING, SMALL_HOP, SMALL_SECTIONS
from wavegen_core.data.pairs import KEY_CHANNELS
from wavegen_core.midi.rolls import KEY_COUNT
from wavegen_core.models.vocoders.config import EXCITATION_RELEASE_SECONDS, ConditioningConfig
from wavegen_core.models.vocoders.excitation import HarmonicExcitation
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_families, vocoder_spec

RATE = 16000
HOP = 128
HARMONICS = 4
CONFIG = ConditioningConfig(hop_length=HOP, excitation="harmonic", excitation_harmonics=HARMONICS)
C4, E4, G4 = 39, 43, 46  # key indices (A0 = 0) of MIDI 60, 64, 67


def _hz(key: int) -> float:
    return 440.0 * 2.0 ** ((key + 21 - 69) / 12)


def _peaks(signal: np.ndarray, count: int) -> list[float]:
    """The ``count`` strongest local maxima of the spectrum, in Hz, ascending."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    hz = np.fft.rfftfreq(len(signal), 1 / RATE)
    local = np.flatnonzero((spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:])) + 1
    strongest = local[np.argsort(spectrum[local])[-count:]]
    return sorted(hz[strongest].tolist())


def test_a_chords_partials_sit_at_each_notes_harmonics() -> None:
    """Channel k - 1 holds harmonic k of every note: for a C major triad its three
    strongest peaks are k x 261.6, k x 329.6 and k x 392.0 Hz, each within a bin."""
    excitation = HarmonicExcitation(CONFIG, RATE)
    frames = 2 * RATE // HOP  # two seconds: bins of half a hertz
    chord = [(key, 0, frames, 0.8) for key in (C4, E4, G4)]
    audio = excitation(note_roll(frames, *chord))[0].numpy()
    assert audio.shape == (HARMONICS + 1, frames * HOP)
    bin_hz = RATE / (frames * HOP)
    for k in range(1, HARMONICS + 1):
        expected = [k * _hz(key) for key in (C4, E4, G4)]
        np.testing.assert_allclose(_peaks(audio[k - 1], 3), expected, atol=1.5 * bin_hz)
    # The noise channel is a burst at the onset, over in well under a second.
    noise = audio[HARMONICS]
    assert np.abs(noise[: RATE // 20]).max() > 0.1
    assert np.abs(noise[RATE // 2 :]).max() < 1e-4


def test_nothing_sounds_before_the_onset_nor_after_the_release_fades() -> None:
    excitation = HarmonicExcitation(CONFIG, RATE)
    onset, release = 10, 40
    audio = excitation(note_roll(100, (C4, onset, release, 0.7)))[0]
    assert audio[:, : onset * HOP].abs().max() == 0.0
    assert audio[0, onset * HOP : release * HOP].abs().max() > 0.3
    faded = release + int(np.ceil(EXCITATION_RELEASE_SECONDS * RATE / HOP)) + 1
    assert audio[:, faded * HOP :].abs().max() == 0.0
    # The harmonics decay from the onset: the note's last held frame is quieter than its first.
    first = audio[0, onset * HOP : (onset + 1) * HOP].abs().max()
    last = audio[0, (release - 1) * HOP : release * HOP].abs().max()
    assert last < 0.9 * first


def test_harmonics_at_or_above_nyquist_are_silent() -> None:
    excitation = HarmonicExcitation(CONFIG, RATE)
    top = KEY_COUNT - 1  # C8, 4186 Hz: its second harmonic is above 8 kHz
    audio = excitation(note_roll(20, (top, 2, 18, 0.8)))[0]
    assert audio[0].abs().max() > 0.3
    assert audio[1:HARMONICS].abs().max() == 0.0


def test_a_chunk_given_its_history_equals_that_part_of_the_whole() -> None:
    """Phases and noise count from the piece's start, and the frames before a chunk give
    its notes their age: any chunk equals the same samples of one pass (given the frame
    after it too, which its last frame ramps towards)."""
    excitation = HarmonicExcitation(CONFIG, RATE)
    notes = [(C4, 3, 250, 0.8), (E4, 120, 160, 0.5), (G4, 200, 300, 0.9), (C4 + 12, 290, 320, 0.6)]
    roll = note_roll(330, *notes)
    whole = excitation(roll)
    history = excitation.history_frames
    for start, stop in ((0, 50), (210, 260), (255, 330)):
        earliest = max(start - history, 0)
        # One frame after the chunk: the value its last frame ramps to.
        window = roll[..., earliest : stop + 1]
        chunk = excitation(window, history=start - earliest, first_frame=earliest)
        chunk = chunk[..., : (stop - start) * HOP]
        torch.testing.assert_close(chunk, whole[..., start * HOP : stop * HOP], atol=2e-5, rtol=0)


def test_the_history_the_conditioning_reads_covers_the_excitations_memory() -> None:
    frames_per_second = RATE / HOP
    assert CONFIG.history_frames(RATE) >= 3.0 * frames_per_second
    assert ConditioningConfig(hop_length=HOP, excitation="none").history_frames(RATE) == 0


# --------------------------------------------------------------------------- the families

EXCITED = ConditioningConfig.model_validate(
    {
        **SMALL_CONDITIONING.model_dump(),
        "excitation": "harmonic",
        "excitation_harmonics": 3,
        "excitation_decay_seconds": 0.01,
    }
)
# The families that take the excitation in (DDSP's own oscillators play the notes).
NEURAL = [family for family in vocoder_families() if SMALL_SECTIONS[family].uses_excitation]


def _build(family: str, conditioning: ConditioningConfig) -> torch.nn.Module:
    spec = vocoder_spec(family)
    torch.manual_seed(0)
    return spec.build(spec.checkpoint_config(SMALL_SECTIONS[family], conditioning, RATE, seed=0))


def _random_roll(frames: int, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    roll = np.zeros((3, KEY_COUNT, frames), dtype=np.float32)
    for _ in range(frames // 4):
        key, start = generator.integers(30, 70), generator.integers(0, frames - 2)
        end = min(start + generator.integers(2, 12), frames)
        roll[0, key, start] = 1.0
        roll[1, key, start:end] = 1.0
        roll[2, key, start:end] = generator.uniform(0.3, 1.0)
    return np.concatenate([roll.reshape(KEY_CHANNELS, frames), np.zeros((1, frames), np.float32)])


def _excitation_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """What the family learns to shape the excitation with."""
    names = ("conditioning.excitation_projection.", "generator.source_convs.")
    return [p for name, p in model.named_parameters() if name.startswith(names)]


@pytest.mark.parametrize("family", NEURAL)
def test_the_excitation_reaches_every_neural_familys_loss(family: str) -> None:
    """The loss of an excerpt whose roll carries the history the excitation reads has a
    gradient on the parameters that take the excitation in; generation renders only the
    frames after the history."""
    model = _build(family, EXCITED)
    history = model.history_frames
    assert history == EXCITED.history_frames(RATE) > 0
    frames = 96  # the GAN's mel loss needs a window of audio
    roll = torch.from_numpy(_random_roll(history + frames))[None]
    audio = 0.1 * torch.randn(1, frames * SMALL_HOP)
    phases = vocoder_spec(family).phase_losses(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    # A few steps first: the flow's couplings start as the identity, blind to it.
    for _ in range(3):
        optimiser.zero_grad()
        if phases is None:
            loss, _ = model.loss(audio, roll)
        else:
            loss, _ = phases["generator"](audio, roll, {})
        loss.backward()
        optimiser.step()
    taking_in = _excitation_parameters(model)
    assert taking_in and all(p.grad is not None and p.grad.abs().sum() > 0 for p in taking_in)
    rendered = model.eval().generate(
        roll, generator=torch.Generator().manual_seed(0), history=history
    )
    assert rendered.shape == audio.shape


def test_without_excitation_nothing_takes_it_in() -> None:
    for family in NEURAL:
        model = _build(family, EXCITED.model_copy(update={"excitation": "none"}))
        assert model.history_frames == 0 and not _excitation_parameters(model), family


def test_an_excited_gans_chunks_join_into_the_whole_piece() -> None:
    """Each chunk gets the frames before its context that the excitation reads, and the
    piece's phases: past the receptive field the join is seamless."""
    model = _build("gan", EXCITED).eval()
    roll = _random_roll(200, seed=1)
    (chunked,) = render_pieces(
        vocoder_spec("gan"), model, [roll], chunk_frames=23, context_frames=12, progress=False
    )
    with torch.no_grad():
        whole = model.generate(torch.from_numpy(roll)[None])[0].numpy()
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


@pytest.mark.parametrize("excitation", ["none", "harmonic"])
@pytest.mark.parametrize("family", NEURAL)
def test_each_family_learns_with_and_without_the_excitation(family: str, excitation: str) -> None:
    """A short real run on one batch of pitched audio (the additive render of a roll):
    the family's own loss falls, whether or not the excitation is there."""
    import pretty_midi

    from wavegen_core.audio.render import additive_render
    from wavegen_core.data.pairs import roll_for_midi

    conditioning = EXCITED.model_copy(update={"excitation": excitation})
    model = _build(family, conditioning).train()
    frames = 64
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    step = frames * SMALL_HOP / RATE / 4
    piano.notes += [pretty_midi.Note(90, 60 + 3 * i, i * step, (i + 1) * step) for i in range(4)]
    midi.instruments.append(piano)
    history = conditioning.history_frames(RATE)
    audio = additive_render(piano.notes, frames * SMALL_HOP, RATE, peak=0.5)
    roll = roll_for_midi(midi, frames * SMALL_HOP, RATE, SMALL_HOP)
    roll = np.concatenate([np.zeros((roll.shape[0], history), np.float32), roll], axis=1)
    audio_t, roll_t = torch.from_numpy(audio)[None], torch.from_numpy(roll)[None]
    spec = vocoder_spec(family)
    saved = spec.checkpoint_config(SMALL_SECTIONS[family], conditioning, RATE, seed=0)
    loop = SMALL_SECTIONS[family].train.model_copy(update={"learning_rate": 3e-3})
    optimisers = spec.optimisers(model, loop, saved)
    phases = spec.phase_losses(model)
    watched = []
    for _ in range(40):
        carry: dict = {}
        if phases is None:
            loss, _ = model.loss(audio_t, roll_t)
            optimisers[0].torch_optimiser.zero_grad()
            loss.backward()
            optimisers[0].torch_optimiser.step()
            watched.append(float(loss.detach()))
            continue
        for optimiser in optimisers:
            loss, extras = phases[optimiser.name](audio_t, roll_t, carry)
            optimiser.torch_optimiser.zero_grad()
            loss.backward()
            optimiser.torch_optimiser.step()
        watched.append(float(extras["mel_l1"]))
    first, last = np.mean(watched[:3]), np.mean(watched[-3:])
    assert last < first - 0.05 * abs(first), (family, excitation, watched)
