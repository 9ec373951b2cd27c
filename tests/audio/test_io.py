"""Audio reading: downmix, resample, and a clear error for every kind of bad file; the
compressed clips of the evaluation page, the same bytes for the same audio."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from wavegen_core.audio.io import (
    AudioReadError,
    _ogg_page_crc,
    load_audio,
    with_ogg_serial,
    write_compressed,
    write_wav,
)


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


@pytest.mark.parametrize("audio_format", ["ogg", "flac"])
def test_compressed_audio_is_the_same_bytes_for_the_same_audio(tmp_path, audio_format) -> None:
    t = np.arange(16000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    paths = [tmp_path / f"{i}.{audio_format}" for i in range(2)]
    for path in paths:
        write_compressed(path, audio, 16000, audio_format)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    decoded, rate = sf.read(paths[0], dtype="float32")
    assert rate == 16000 and len(decoded) == len(audio)
    # Lossy or not, the tone is there: the decoded signal correlates with the original.
    assert np.corrcoef(decoded, audio)[0, 1] > 0.99


def test_every_ogg_page_keeps_a_valid_checksum_after_the_serial_is_set(tmp_path) -> None:
    path = tmp_path / "a.ogg"
    sf.write(path, np.zeros(48000, dtype=np.float32), 16000, format="OGG", subtype="VORBIS")
    original = path.read_bytes()
    # libsndfile's own pages check out under our CRC, so ours is the Ogg one.
    first_page = 27 + original[26] + sum(original[27 : 27 + original[26]])
    page = bytearray(original[:first_page])
    stored = int.from_bytes(page[22:26], "little")
    page[22:26] = bytes(4)
    assert _ogg_page_crc(bytes(page)) == stored
    fixed = with_ogg_serial(original, 7)
    assert len(fixed) == len(original) and fixed[14:18] == (7).to_bytes(4, "little")
    assert len(sf.read(io.BytesIO(fixed))[0]) == 48000
    with pytest.raises(ValueError, match="not an Ogg page"):
        with_ogg_serial(b"RIFF" + original[4:], 7)
