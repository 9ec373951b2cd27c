"""The transcribers behind one call, audio file -> piano MIDI.

``model`` is our Onsets and Frames from a ``train_transcriber`` checkpoint;
``basic_pitch`` is Spotify's basic-pitch (Bittner et al. 2022), an optional extra whose
ONNX weights ship inside its package, run with onnxruntime (no TensorFlow). Both read
audio of any rate and channel count, and both raise
:class:`~wavegen_core.audio.io.AudioReadError` for a file they cannot read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import pretty_midi
import torch

from wavegen_core.audio.io import open_audio, write_wav
from wavegen_core.errors import WavegenError
from wavegen_core.midi.rolls import NoteDecodingConfig
from wavegen_core.models.transcription.onsets_frames import SPEC, OnsetsAndFrames, transcribe_file

BACKENDS = ("model", "basic_pitch")
BASIC_PITCH_INSTALL = (
    "basic-pitch is not installed; `make setup` installs it (BASIC_PITCH=1, the default), "
    "or by hand: pip install -e '.[basic-pitch]' && pip install --no-deps basic-pitch==0.4.0"
)


class Transcriber(Protocol):
    """Audio file in, piano MIDI out."""

    name: str

    def __call__(self, path: str | os.PathLike[str]) -> pretty_midi.PrettyMIDI: ...


class OnsetsAndFramesTranscriber:
    """Our model, decoding with ``decoding`` and reading ``chunk_seconds`` at a time with
    ``overlap_seconds`` of context on each side."""

    name = "model"

    def __init__(
        self,
        model: OnsetsAndFrames,
        decoding: NoteDecodingConfig,
        chunk_seconds: float,
        overlap_seconds: float,
    ) -> None:
        self.model = model
        self.decoding = decoding
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds

    def __call__(self, path: str | os.PathLike[str]) -> pretty_midi.PrettyMIDI:
        # Read block by block: memory is bounded by the chunk, not the file.
        return transcribe_file(
            self.model, path, self.decoding, self.chunk_seconds, self.overlap_seconds
        )


def basic_pitch_available() -> bool:
    """Whether the basic-pitch extra (and onnxruntime to run it) is installed."""
    return all(importlib.util.find_spec(name) for name in ("basic_pitch", "onnxruntime"))


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """Importing basic-pitch logs a warning for each runtime it does not find (CoreML,
    TFLite, TensorFlow) and resampy warns about pkg_resources; only ONNX is used here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        root.setLevel(level)


class BasicPitchTranscriber:
    """basic-pitch with its published defaults (thresholds 0.5/0.3, notes >= 127.7 ms)."""

    name = "basic_pitch"

    def __init__(self) -> None:
        if not basic_pitch_available():
            raise WavegenError(BASIC_PITCH_INSTALL)
        with _quiet_import():
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model

        # basic-pitch reads the audio itself (librosa, 22.05 kHz mono).
        self._model = Model(ICASSP_2022_MODEL_PATH)

    def __call__(self, path: str | os.PathLike[str]) -> pretty_midi.PrettyMIDI:
        from basic_pitch.inference import predict

        # Our reader first, so an unreadable file fails as it does for our model.
        open_audio(path).close()
        # predict() prints a line per file; the stage shows a progress bar instead.
        with contextlib.redirect_stdout(io.StringIO()):
            _, midi, _ = predict(Path(path), self._model)
        return midi

    def transcribe_audio(self, audio: np.ndarray, sample_rate: int) -> pretty_midi.PrettyMIDI:
        """The transcription of samples in memory (basic-pitch reads files: a temporary
        WAV is written for it)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "audio.wav"
            write_wav(path, np.asarray(audio, dtype=np.float32), sample_rate)
            return self(path)


def make_transcriber(
    backend: str,
    checkpoint: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    *,
    decoding: NoteDecodingConfig | None = None,
    chunk_seconds: float = 20.0,
    overlap_seconds: float = 2.0,
) -> Transcriber:
    """The transcriber ``backend`` names; ``model`` needs the ``checkpoint`` and uses the
    decoding and chunking given (basic-pitch has its own)."""
    if backend == "basic_pitch":
        return BasicPitchTranscriber()
    if backend != "model":
        raise ValueError(f"unknown transcription backend {backend!r}; one of {BACKENDS}")
    if checkpoint is None or not Path(checkpoint).is_file():
        raise WavegenError(
            f"no transcriber checkpoint at {checkpoint}; run `dvc repro train_transcriber` first"
        )
    return OnsetsAndFramesTranscriber(
        SPEC.load(checkpoint, device),
        decoding or NoteDecodingConfig(),
        chunk_seconds,
        overlap_seconds,
    )
