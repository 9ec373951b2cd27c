"""Reading and writing audio: any sample rate and channel count in, mono float32 out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from wavegen_core.files import atomic_path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

# Peak below which a file is taken to hold no signal (about -80 dBFS).
SILENCE_PEAK = 1e-4


class AudioReadError(ValueError):
    """An audio file is unreadable, empty or silent; the message says which."""


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``.

    Channels are averaged (stereo is downmixed) and other rates are resampled with
    soxr's high-quality resampler.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise AudioReadError("empty file (0 bytes)")
    try:
        samples, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioReadError(f"unreadable audio: {err}") from None
    if samples.shape[0] == 0:
        raise AudioReadError("no audio frames")
    mono = samples.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioReadError("audio holds NaN or infinite samples")
    if np.abs(mono).max() < SILENCE_PEAK:
        raise AudioReadError("silent audio (peak below -80 dBFS)")
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def stream_audio(
    path: str | os.PathLike[str], sample_rate: int, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """``path`` as consecutive mono float32 blocks at ``sample_rate``, for long files.

    The same audio as :func:`load_audio` (downmixed, resampled with soxr's streaming
    resampler) in memory bounded by the block, not the file. An unreadable or empty
    file raises :class:`AudioReadError` before the first block; a silent one is not
    an error here (it transcribes to no notes).
    """
    return _blocks(open_audio(path), sample_rate, block_seconds)


@dataclass(frozen=True)
class AudioFile:
    """Audio read a frame range at a time, never whole: a prepared corpus's file at the
    pipeline's rate (mono float32, the samples :func:`load_audio` would give there)."""

    path: str
    samples: int

    @classmethod
    def at_rate(cls, path: str | os.PathLike[str], sample_rate: int) -> AudioFile:
        """``path`` if it is at ``sample_rate`` (no resampling on the fly), else an
        :class:`AudioReadError` that says so."""
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioReadError(f"unreadable audio: {err}") from None
        if info.samplerate != sample_rate:
            raise AudioReadError(
                f"{path} is at {info.samplerate} Hz, not {sample_rate}: cannot be read in "
                "ranges without resampling"
            )
        return cls(str(path), int(info.frames))

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples ``start .. start + count - 1``, zero past the end."""
        out = np.zeros(count, dtype=np.float32)
        stop = min(start + count, self.samples)
        if stop > start:
            block = sf.read(self.path, start=start, stop=stop, dtype="float32", always_2d=True)[0]
            out[: stop - start] = block.mean(axis=1)
        return out


def read_padded(
    values: np.ndarray | AudioFile, start: int, count: int, dtype: Any = np.float32
) -> np.ndarray:
    """Steps ``start .. start + count - 1`` of an array (as ``dtype``) or of an audio
    file, zero past the end: one excerpt of a piece, in memory or streamed."""
    if isinstance(values, AudioFile):
        return values.read(start, count)
    out = np.zeros(count, dtype=dtype)
    clip = values[start : start + count]
    out[: len(clip)] = clip
    return out


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open an audio file for reading; :class:`AudioReadError` if it is empty or unreadable."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise AudioReadError("empty file (0 bytes)")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioReadError(f"unreadable audio: {err}") from None


def _blocks(sound: sf.SoundFile, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    with sound:
        if sound.frames == 0:
            raise AudioReadError("no audio frames")
        resampler = (
            soxr.ResampleStream(sound.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
            if sound.samplerate != sample_rate
            else None
        )
        block_frames = max(1, int(block_seconds * sound.samplerate))
        while True:
            try:
                block = sound.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioReadError(f"unreadable audio: {err}") from None
            last = len(block) < block_frames or sound.tell() >= sound.frames
            mono = block.mean(axis=1)
            if not np.isfinite(mono).all():
                raise AudioReadError("audio holds NaN or infinite samples")
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                return


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio in [-1, 1] as 16-bit PCM WAV, atomically."""
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


# Compressed formats browsers play: Ogg Vorbis (smallest) and FLAC (lossless).
COMPRESSED_FORMATS = ("ogg", "flac")
# An Ogg stream's serial number; libsndfile draws a random one, so that the same audio
# would give different bytes (and a different DVC hash) on every run.
OGG_SERIAL = 0x77617665


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
        table.append(value & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_page_crc(page: bytes) -> int:
    """The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, zero start."""
    value = 0
    for byte in page:
        value = ((value << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((value >> 24) & 0xFF) ^ byte]
    return value


def with_ogg_serial(data: bytes, serial: int) -> bytes:
    """An Ogg file's bytes with every page's stream serial set to ``serial`` (and each
    page's checksum recomputed): one logical stream, the same audio."""
    out = bytearray(data)
    position = 0
    while position < len(out):
        if out[position : position + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {position}")
        segments = out[position + 26]
        table = out[position + 27 : position + 27 + segments]
        size = 27 + segments + sum(table)
        out[position + 14 : position + 18] = serial.to_bytes(4, "little")
        out[position + 22 : position + 26] = bytes(4)
        checksum = _ogg_page_crc(bytes(out[position : position + size]))
        out[position + 22 : position + 26] = checksum.to_bytes(4, "little")
        position += size
    return bytes(out)


def write_compressed(
    path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int, audio_format: str
) -> None:
    """Write mono audio as Ogg Vorbis or FLAC (16-bit), atomically; the same audio gives
    the same bytes."""
    if audio_format not in COMPRESSED_FORMATS:
        raise ValueError(f"audio_format {audio_format!r}: one of {COMPRESSED_FORMATS}")
    clipped = np.clip(audio, -1.0, 1.0)
    with atomic_path(path) as tmp:
        if audio_format == "flac":
            sf.write(tmp, clipped, sample_rate, format="FLAC", subtype="PCM_16")
            return
        sf.write(tmp, clipped, sample_rate, format="OGG", subtype="VORBIS")
        Path(tmp).write_bytes(with_ogg_serial(Path(tmp).read_bytes(), OGG_SERIAL))
