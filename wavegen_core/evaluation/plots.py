"""Pictures a person would rather look at than numbers: piano rolls and spectrograms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
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
        _draw_roll(axes[1, 0], midi)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, duration)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")


def _draw_roll(axes: Any, midi: pretty_midi.PrettyMIDI) -> None:
    roll = midi.get_piano_roll(fs=ROLL_FPS)[PIANO_LOW : PIANO_HIGH + 1]
    axes.imshow(
        roll,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, roll.shape[1] / ROLL_FPS, PIANO_LOW - 0.5, PIANO_HIGH + 0.5),
    )
    axes.set_ylabel("MIDI pitch")


def plot_renders(
    path: str | os.PathLike[str],
    renders: dict[str, np.ndarray],
    sample_rate: int,
    midi: pretty_midi.PrettyMIDI,
    title: str,
) -> None:
    """One spectrogram per named render of the same piece (the truth, each vocoder, the
    references), stacked on one time axis above the MIDI's roll, as PNG: to compare
    by eye what the distances summarise."""
    rows = len(renders) + 1
    figure = Figure(figsize=(12, 2.2 * rows))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)
    duration = max(len(audio) for audio in renders.values()) / sample_rate
    for row, (name, audio) in enumerate(renders.items()):
        axes[row, 0].specgram(
            audio, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", scale="dB", vmin=-120
        )
        axes[row, 0].set_ylabel(f"{name}\nHz")
    axes[0, 0].set_title(title)
    _draw_roll(axes[-1, 0], midi)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, duration)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=60, format="png")


def _roll(notes: list[pretty_midi.Note], n_frames: int) -> np.ndarray:
    roll = np.zeros((PIANO_HIGH - PIANO_LOW + 1, n_frames), dtype=bool)
    for note in notes:
        if PIANO_LOW <= note.pitch <= PIANO_HIGH:
            first = int(note.start * ROLL_FPS)
            roll[note.pitch - PIANO_LOW, first : max(int(note.end * ROLL_FPS), first + 1)] = True
    return roll


# Colours of the comparison rolls: both agree, only the reference, only the estimate.
AGREE, MISSED, EXTRA = (0.15, 0.15, 0.15), (0.2, 0.45, 0.95), (0.9, 0.2, 0.15)


def plot_transcriptions(
    path: str | os.PathLike[str],
    reference: list[pretty_midi.Note],
    estimates: dict[str, list[pretty_midi.Note]],
    title: str,
) -> None:
    """One piano roll per transcriber against the reference, as PNG.

    Black where estimate and reference agree, blue where a reference note was missed,
    red where the estimate has a note the reference does not.
    """
    end = max((note.end for notes in (reference, *estimates.values()) for note in notes), default=1)
    n_frames = int(np.ceil(end * ROLL_FPS)) + 1
    truth = _roll(reference, n_frames)
    rows = len(estimates)
    figure = Figure(figsize=(12, 2.8 * rows))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)
    for row, (name, notes) in enumerate(estimates.items()):
        estimate = _roll(notes, n_frames)
        image = np.ones((*truth.shape, 3))
        image[truth & estimate] = AGREE
        image[truth & ~estimate] = MISSED
        image[~truth & estimate] = EXTRA
        ax = axes[row, 0]
        ax.imshow(
            image,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            extent=(0, n_frames / ROLL_FPS, PIANO_LOW - 0.5, PIANO_HIGH + 0.5),
        )
        pitches = [note.pitch for note in reference + notes] or [60]
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.set_ylabel("MIDI pitch")
        ax.set_title(f"{title}: {name} (black agrees, blue missed, red extra)", fontsize=10)
    axes[-1, 0].set_xlabel("time (s)")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")


# Semitones of empty roll shown above the highest and below the lowest note.
ROLL_PITCH_MARGIN = 2


def plot_piano_roll(
    notes: list[pretty_midi.Note],
    path: str | os.PathLike[str],
    *,
    title: str,
    primer_seconds: float | None = None,
) -> Path:
    """One piece as a piano roll, each note a bar coloured by its velocity, as PNG.

    Drawn from the notes themselves rather than a rasterised roll, so that short notes
    are not lost to the frame grid. ``primer_seconds`` marks with a dashed line where
    the primer a model continued ends and its own music begins. A piece without notes
    gives an empty roll over the piano's range, so that a silent sample still shows up.
    """
    figure = Figure(figsize=(12, 4))
    ax = figure.subplots()
    velocity = Normalize(vmin=0, vmax=127)
    # Each note a rectangle one semitone high (less a sliver, so repeated notes part).
    bars = PolyCollection(
        [
            [
                (note.start, note.pitch - 0.4),
                (note.end, note.pitch - 0.4),
                (note.end, note.pitch + 0.4),
                (note.start, note.pitch + 0.4),
            ]
            for note in notes
        ],
        array=np.array([note.velocity for note in notes], dtype=float),
        cmap="viridis",
        norm=velocity,
    )
    ax.add_collection(bars)
    figure.colorbar(bars, ax=ax, label="velocity")
    if notes:
        pitches = [note.pitch for note in notes]
        low, high = min(pitches) - ROLL_PITCH_MARGIN, max(pitches) + ROLL_PITCH_MARGIN
    else:
        low, high = PIANO_LOW, PIANO_HIGH
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center")
    end = max((note.end for note in notes), default=0.0)
    if primer_seconds is not None:
        # A primer that outlasts the notes still shows, a little inside the right edge.
        end = max(end, 1.1 * primer_seconds)
    end = end if end > 0 else 1.0
    ax.set_xlim(0, end)
    ax.set_ylim(low - 0.5, high + 0.5)
    if primer_seconds is not None:
        ax.axvline(primer_seconds, color="tab:red", linestyle="--", linewidth=1)
        # Label at the top of the line (x in data, y in axes coordinates), on the side
        # with room for it.
        left_side = primer_seconds > 0.8 * end
        ax.text(
            primer_seconds,
            0.98,
            "primer " if left_side else " primer",
            transform=ax.get_xaxis_transform(),
            color="tab:red",
            ha="right" if left_side else "left",
            va="top",
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return Path(path)


def plot_hierarchy(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    codes: list[np.ndarray],
    samples_per_code: list[int],
    title: str,
) -> None:
    """One piece of the learnt hierarchy as PNG: the codes of every tier over time (the
    top tier first, one dot per code, its index on the y axis) above the spectrogram of
    the waveform decoded from them, all on one time axis."""
    rows = len(codes) + 1
    figure = Figure(figsize=(12, 1.8 * len(codes) + 3.2))
    axes = figure.subplots(
        rows, 1, sharex=True, squeeze=False, height_ratios=[1.0] * len(codes) + [1.8]
    )
    for row, tier in enumerate(range(len(codes), 0, -1)):
        values = codes[tier - 1]
        seconds = np.arange(len(values)) * samples_per_code[tier - 1] / sample_rate
        axes[row, 0].scatter(seconds, values, s=2, c=values, cmap="viridis", marker="s")
        axes[row, 0].set_ylabel(f"tier {tier}\ncode")
    axes[0, 0].set_title(title)
    axes[-1, 0].specgram(
        audio, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", scale="dB", vmin=-120
    )
    axes[-1, 0].set_ylabel("frequency (Hz)")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, len(audio) / sample_rate)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
