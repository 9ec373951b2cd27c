"""Rendering with the real FluidSynth and the Debian GM soundfont."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SOUNDFONT, scale_midi
from wavegen_core.audio.render import RendererUnavailable, check_renderer, render_midi
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
