"""Pictures a person would rather look at than numbers: piano rolls and spectrograms."""

from __future__ import annotations

import os

import numpy as np
import pretty_midi
from matplotlib.figure import Figure

from wavegen_core.files import atomic_path

# Piano-roll resolution of the pictures, in frames per second.
ROLL_FPS = 50
PIANO_LOW, PIANO_HIGH = 21, 108


def plot_audio_and_midi(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    midi: pretty_midi.PrettyMIDI | None,
    title: str,
) -> None:
    """A log-magnitude spectrogram above the MIDI's piano roll, on one time axis, as PNG."""
    rows = 2 if midi is not None else 1
    # The Figure API needs no pyplot state or display backend.
    figure = Figure(figsize=(12, 3.2 * rows))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)
    duration = len(audio) / sample_rate
    axes[0, 0].specgram(
        audio, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", scale="dB", vmin=-120
    )
    axes[0, 0].set_ylabel("frequency (Hz)")
    axes[0, 0].set_title(title)
    if midi is not None:
        roll = midi.get_piano_roll(fs=ROLL_FPS)[PIANO_LOW : PIANO_HIGH + 1]
        axes[1, 0].imshow(
            roll,
            aspect="auto",
            origin="lower",
            cmap="Greys",
            interpolation="nearest",
            extent=(0, roll.shape[1] / ROLL_FPS, PIANO_LOW - 0.5, PIANO_HIGH + 0.5),
        )
        axes[1, 0].set_ylabel("MIDI pitch")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, duration)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
