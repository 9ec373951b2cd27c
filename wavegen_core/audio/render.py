"""MIDI to audio with FluidSynth and a General MIDI soundfont."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pretty_midi
from pydantic import AfterValidator, Field

from wavegen_core.errors import WavegenError
from wavegen_core.param_types import Seconds, Strict


def reserved_soundfont(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (or links to) a MuseScore General soundfont: every variant of
    it is kept for evaluating on a piano no model trained on."""
    return "musescore" in Path(path).resolve().name.lower()


def _trainable(path: str) -> str:
    if reserved_soundfont(path):
        raise ValueError(
            f"{path!r} is a MuseScore General soundfont, reserved for the unseen-piano "
            "evaluation (evaluation.soundfont); train on another soundfont"
        )
    return path


TrainingSoundfont = Annotated[str, AfterValidator(_trainable)]


class RenderConfig(Strict):
    """Synthesis of MIDI to audio with FluidSynth."""

    # The corpus's piano: every stage trains and is scored on it.
    soundfont: TrainingSoundfont = "/usr/share/sounds/sf2/TimGM6mb.sf2"
    # The pianos the transcriber's extra renderings (data.variants) draw from; empty
    # renders them with `soundfont` alone.
    soundfonts: list[TrainingSoundfont] = [
        "/usr/share/sounds/sf2/TimGM6mb.sf2",
        "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    ]
    # Kept after the last note-off so releases are not cut.
    release_tail: Seconds = Field(0.25, le=5.0)
    # Peak amplitude after normalisation.
    peak: float = Field(0.9, gt=0.0, le=1.0)


# What a Debian/Ubuntu machine needs for rendering; named in every error about it.
DEBIAN_PACKAGES = ("fluidsynth", "timgm6mb-soundfont")
# The Debian package of each soundfont the params name by default.
SOUNDFONT_PACKAGES = {
    "TimGM6mb.sf2": "timgm6mb-soundfont",
    "FluidR3_GM.sf2": "fluid-soundfont-gm",
    "FluidR3Mono_GM.sf3": "fluidr3mono-gm-soundfont",
    "sf_GMbank.sf2": "csound-soundfont",
    "MuseScore_General_Lite.sf3": "musescore-general-soundfont-small",
    "MuseScore_General.sf3": "musescore-general-soundfont-small",
}


class RendererUnavailable(WavegenError):
    """FluidSynth or the soundfont is missing; the message names what to install."""


def check_renderer(soundfont: str | os.PathLike[str], param: str = "data.render.soundfont") -> None:
    """Fail early, with the packages to install, when rendering cannot work here."""
    package = SOUNDFONT_PACKAGES.get(Path(soundfont).name, DEBIAN_PACKAGES[1])
    install = f"install them with: apt-get install {DEBIAN_PACKAGES[0]} {package}"
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth loads libfluidsynth on import)
    except ImportError as err:
        raise RendererUnavailable(
            f"the FluidSynth library cannot be loaded ({err}); {install}"
        ) from None
    if not Path(soundfont).is_file():
        raise RendererUnavailable(
            f"soundfont {str(soundfont)!r} ({param}) does not exist; {install}, "
            f"or point {param} at another .sf2/.sf3 file"
        )


@dataclass(frozen=True)
class Synthesis:
    """How FluidSynth plays a piece, beyond the soundfont: one draw of a rendering's
    variations. The defaults are FluidSynth's own settings and the MIDI as written."""

    # General MIDI program of every melodic part (0-3: acoustic, bright, electric grand,
    # honky-tonk); None keeps the MIDI's.
    program: int | None = None
    # FluidSynth's master gain (0.2 is its default). Its output is 16-bit, so a loud
    # setting saturates the peaks, as an overdriven recording does.
    gain: float = 0.2
    # Reverb room size and wet level (0..1 each); None keeps FluidSynth's defaults.
    reverb: tuple[float, float] | None = None
    # Chorus level (0 turns it off); None keeps FluidSynth's default.
    chorus: float | None = None
    # The instrument's velocity response: a played velocity v sounds as 127 (v/127)^gamma.
    # The MIDI (the label) keeps v: a piano with a lighter or heavier touch.
    velocity_gamma: float = 1.0


def _played(midi: pretty_midi.PrettyMIDI, synthesis: Synthesis) -> pretty_midi.PrettyMIDI:
    """A copy of ``midi`` with the program and velocity response of ``synthesis``."""
    played = copy.deepcopy(midi)
    for instrument in played.instruments:
        if synthesis.program is not None and not instrument.is_drum:
            instrument.program = synthesis.program
        if synthesis.velocity_gamma != 1.0:
            for note in instrument.notes:
                level = 127.0 * (note.velocity / 127.0) ** synthesis.velocity_gamma
                note.velocity = int(np.clip(round(level), 1, 127))
    return played


def _synthesizer(soundfont: str, sample_rate: int, synthesis: Synthesis) -> tuple[object, int]:
    import fluidsynth

    settings: dict[str, float] = {}
    if synthesis.reverb is not None:
        settings["synth.reverb.room-size"], settings["synth.reverb.level"] = synthesis.reverb
    if synthesis.chorus is not None:
        settings["synth.chorus.level"] = synthesis.chorus
    # Settings given at creation: FluidSynth reads its effects' parameters from them.
    synth = fluidsynth.Synth(gain=synthesis.gain, samplerate=sample_rate, **settings)
    sfid = synth.sfload(soundfont)
    if sfid < 0:
        synth.delete()
        raise ValueError(f"FluidSynth cannot load the soundfont {soundfont!r}")
    return synth, sfid


def _render_instrument(
    instrument: pretty_midi.Instrument,
    sample_rate: int,
    soundfont: str,
    synthesis: Synthesis | None,
) -> np.ndarray:
    """One part, on a synthesizer of its own (so no reverb tail crosses between parts)."""
    if synthesis is None:
        return instrument.fluidsynth(fs=sample_rate, synthesizer=soundfont)
    synth, sfid = _synthesizer(soundfont, sample_rate, synthesis)
    try:
        return instrument.fluidsynth(fs=sample_rate, synthesizer=synth, sfid=sfid)
    finally:
        synth.delete()  # type: ignore[attr-defined]


def render_midi(
    midi: pretty_midi.PrettyMIDI,
    *,
    sample_rate: int,
    soundfont: str | os.PathLike[str],
    release_tail: float,
    peak: float,
    synthesis: Synthesis | None = None,
) -> np.ndarray:
    """Synthesise ``midi`` to mono float32 audio, normalised to ``peak``.

    The audio lasts until the last note-off plus ``release_tail`` seconds, so its
    duration matches the MIDI's. ``synthesis`` varies how FluidSynth plays (program,
    gain, reverb, chorus, velocity response); None plays with its defaults. FluidSynth
    is deterministic: the same MIDI, soundfont and synthesis give identical samples.
    """
    if synthesis is not None:
        midi = _played(midi, synthesis)
    channels = [
        _render_instrument(instrument, sample_rate, str(soundfont), synthesis)
        for instrument in midi.instruments
        if instrument.notes
    ]
    if not channels:
        raise ValueError("the MIDI has no notes to render")
    length = max(len(channel) for channel in channels)
    audio = np.zeros(length, dtype=np.float64)
    for channel in channels:
        audio[: len(channel)] += channel
    audio = audio[: int(round((midi.get_end_time() + release_tail) * sample_rate))]
    loudest = np.abs(audio).max()
    if loudest > 0:
        audio *= peak / loudest
    return audio.astype(np.float32)


# The plain additive render: what knowing the pitches alone gives, for scale.
SINE_HARMONICS = 6
SINE_DECAY_PER_SECOND = 3.0  # amplitude falls by e every third of a second
SINE_FADE_SECONDS = 0.05  # after the note-off


def additive_render(
    notes: list[pretty_midi.Note], samples: int, sample_rate: int, peak: float = 0.9
) -> np.ndarray:
    """A plain sine render of ``notes``: per note ``SINE_HARMONICS`` harmonics of
    amplitude 1/k, scaled by velocity, decaying exponentially and faded out after the
    note-off; ``samples`` long, normalised to ``peak``. Nothing is learnt: a vocoder
    should sound better than this."""
    audio = np.zeros(samples, dtype=np.float64)
    harmonics = np.arange(1, SINE_HARMONICS + 1)
    fade = int(SINE_FADE_SECONDS * sample_rate)
    for note in notes:
        first = int(round(note.start * sample_rate))
        if first >= samples:
            continue
        last = min(int(round(note.end * sample_rate)) + fade, samples)
        t = np.arange(last - first) / sample_rate
        f0 = 440.0 * 2.0 ** ((note.pitch - 69) / 12)
        audible = harmonics[harmonics * f0 < sample_rate / 2]
        tone = (np.sin(2 * np.pi * f0 * audible[:, None] * t) / audible[:, None]).sum(axis=0)
        envelope = np.exp(-SINE_DECAY_PER_SECOND * t) * note.velocity / 127
        held = int(round((note.end - note.start) * sample_rate))
        envelope[held:] *= np.linspace(1.0, 0.0, max(len(envelope) - held, 0))
        audio[first:last] += tone * envelope
    loudest = np.abs(audio).max()
    if loudest > 0:
        audio *= peak / loudest
    return audio.astype(np.float32)


def noise_render(like: np.ndarray, seed: int) -> np.ndarray:
    """White noise as loud (RMS) as ``like``, the same length, from ``seed``: the floor
    every render must clear. Knowing nothing of the notes, it should score no onsets."""
    rms = float(np.sqrt(np.mean(np.square(like, dtype=np.float64)))) if len(like) else 0.0
    noise = np.random.default_rng(seed).standard_normal(len(like)) * rms
    return np.clip(noise, -1.0, 1.0).astype(np.float32)
