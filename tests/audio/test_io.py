"""Audio reading: downmix, resample, and a clear error for every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from wavegen_core.audio.io import AudioReadError, load_audio, write_wav


def test_stereo_44k_is_downmixed_and_resampled(tmp_path) -> None:
    path = tmp_path / "stereo.flac"
    sf.write(path, tone(2.0, 44100, channels=2), 44100)
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 32000) <= 1
    # The 440 Hz tone survives resampling: its spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"RIFF\x00\x00\x00\x00WAVEjunkjunk", "unreadable audio")],
)
def test_bad_files_raise_audio_read_error(tmp_path, content, reason) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioReadError, match=reason):
        load_audio(path, 16000)


def test_silent_audio_is_refused(tmp_path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioReadError, match="silent"):
        load_audio(path, 16000)


def test_write_wav_round_trip_leaves_no_temporary(tmp_path) -> None:
    audio = tone(0.5, 16000)
    write_wav(tmp_path / "x.wav", audio, 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]
    back = load_audio(tmp_path / "x.wav", 16000)
    assert np.max(np.abs(back - audio)) < 1e-3  # 16-bit quantisation
