"""Rendering with the real FluidSynth and the Debian GM soundfont."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SOUNDFONT, scale_midi
from wavegen_core.audio.render import (
    RendererUnavailable,
    additive_render,
    check_renderer,
    render_midi,
)
from wavegen_core.midi.chorales import ChoralesConfig, chorale_to_midi


def _render(midi, tail: float = 0.25) -> np.ndarray:
    return render_midi(midi, sample_rate=16000, soundfont=SOUNDFONT, release_tail=tail, peak=0.9)


@pytest.mark.parametrize("corpus_id", ["bach/bwv269", "bach/bwv347", "bach/bwv153.1"])
def test_chorale_renders_non_silent_with_the_midi_duration(corpus_id) -> None:
    midi = chorale_to_midi(corpus_id, ChoralesConfig(), seed=7)
    audio = _render(midi)
    assert audio.dtype == np.float32
    assert abs(len(audio) / 16000 - midi.get_end_time()) < 0.5
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)
    # Sound throughout: every second of the piece has energy, not just the start.
    frames = audio[: len(audio) // 16000 * 16000].reshape(-1, 16000)
    assert (np.sqrt((frames**2).mean(axis=1)) > 1e-3).all()


def test_rendering_is_deterministic() -> None:
    midi = scale_midi([60, 62, 64, 65, 67])
    assert np.array_equal(_render(midi), _render(midi))


def test_the_rendered_pitch_is_the_midi_pitch() -> None:
    audio = _render(scale_midi([69] * 4, step=0.5))  # A4 = 440 Hz for two seconds
    spectrum = np.abs(np.fft.rfft(audio[:16000] * np.hanning(16000)))
    peak_hz = np.argmax(spectrum[100:]) + 100  # bins are 1 Hz apart; skip the DC region
    assert abs(peak_hz - 440) < 10 or abs(peak_hz - 880) < 15


def test_missing_soundfont_names_the_package(tmp_path) -> None:
    with pytest.raises(RendererUnavailable, match="apt-get install fluidsynth timgm6mb-soundfont"):
        check_renderer(tmp_path / "missing.sf2")


def test_the_additive_render_sounds_each_note_at_its_pitch_and_time() -> None:
    notes = scale_midi([69, 57], step=0.5).instruments[0].notes  # A4 at 0 s, A3 at 0.5 s
    audio = additive_render(notes, 16000, 16000)
    assert audio.dtype == np.float32 and len(audio) == 16000
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-6)
    first = np.abs(np.fft.rfft(audio[1000:7000] * np.hanning(6000)))
    assert abs(np.argmax(first) * 16000 / 6000 - 440) < 16000 / 6000
    second = np.abs(np.fft.rfft(audio[9000:15000] * np.hanning(6000)))
    assert abs(np.argmax(second) * 16000 / 6000 - 220) < 16000 / 6000
    # A note past the end is left out, and nothing sounds before the first onset.
    late = scale_midi([60], step=0.5).instruments[0].notes
    late[0].start, late[0].end = 2.0, 2.5
    assert not additive_render(late, 16000, 16000).any()
