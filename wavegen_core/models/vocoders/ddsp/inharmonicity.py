"""The inharmonicity of a piano's strings, read from recordings and their MIDI.

A stiff string's partial k sounds at ``k f0 sqrt(1 + B k^2)`` (Fletcher 1964), so its
upper partials run sharp of the harmonic series by an amount B sets. A spectral loss
hardly moves B: a partial a few bins away from the true one gives the loss no slope
towards it. So the DDSP piano starts from B measured on its training audio.

Per key, the magnitude spectra of the key's notes (from shortly after each onset to
its release, at most ``MAX_SECONDS``) are averaged, each normalised to its own peak,
on one fine frequency grid. Each candidate B on a log grid predicts where partials
2..K lie; its score is the sum of the magnitudes found there (the largest within half
a hertz). The best B is the key's: the one that puts the model's partials, on its
equal-tempered fundamentals, where the recording has them. Averaging over many notes
lets the key's own partials, which every note shares, stand out from those of the other
notes of its chords, which vary.

Keys with too few notes get B interpolated (in log B) from their measured neighbours;
past the measured range, B follows the given prior's slope from the nearest measured
key, since B rises along the keyboard.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pretty_midi

from wavegen_core.data.pairs import KEY_CHANNELS, ROLL_FEATURES
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY, NoteDecodingConfig, decode_notes
from wavegen_core.models.spec import TrainingPair

# The analysed stretch of a note: from SKIP_SECONDS after its onset (past the hammer's
# noise) to its release, at most MAX_SECONDS, at least MIN_SECONDS.
SKIP_SECONDS = 0.03
MIN_SECONDS = 0.12
MAX_SECONDS = 1.0
# Notes per key analysed at most (the first ones in corpus order), and needed at least.
MAX_NOTES = 48
MIN_NOTES = 3
# Candidate B: log-spaced over and beyond the physical range of piano strings.
B_GRID = np.geomspace(1e-6, 5e-2, 281)
# Partials above this fraction of Nyquist are not scored (the anti-alias filter's band).
NYQUIST_FRACTION = 0.9
# A partial's level is the largest magnitude within this many Hz of where B puts it:
# well inside a main lobe (4 / MAX_SECONDS Hz wide), so that the score still grows as a
# candidate's partials come closer to the peaks' centres and a flat top cannot hide B.
PEAK_WINDOW_HZ = 0.5


@dataclass(frozen=True)
class InharmonicityEstimate:
    """B per key (KEY_COUNT,), how many notes each key's was measured on, and which
    keys were measured (the others interpolated)."""

    inharmonicity: np.ndarray
    notes: np.ndarray
    measured: np.ndarray


def _note_spans(piece: TrainingPair, hop_length: int) -> dict[int, list[tuple[int, int]]]:
    """(first, last) sample of every note of the piece's roll, by key, as the
    transcriber's decoder reads notes: from an onset to the end of its sounding run or
    the key's next onset."""
    frames = piece.frames
    roll = piece.roll_window(0, frames)  # one piece's roll at a time
    keys = roll[:KEY_CHANNELS].reshape(len(ROLL_FEATURES), KEY_COUNT, frames)
    onset, sounding, velocity = (np.asarray(feature, np.float32).T for feature in keys)
    # At one "frame per second" the decoded notes' times are frame indices.
    notes = decode_notes(onset, sounding, velocity, NoteDecodingConfig(), frames_per_second=1.0)
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for note in notes:
        first, last = round(note.start), round(note.end)
        spans[note.pitch - LOWEST_KEY].append((first * hop_length, last * hop_length))
    return spans


def _key_spectrum(
    pieces: Sequence[TrainingPair],
    spans: Sequence[tuple[int, int, int]],
    sample_rate: int,
    n_fft: int,
) -> np.ndarray:
    """The mean of the notes' peak-normalised magnitude spectra (n_fft // 2 + 1,)."""
    total = np.zeros(n_fft // 2 + 1)
    skip = round(SKIP_SECONDS * sample_rate)
    longest = round(MAX_SECONDS * sample_rate)
    for index, first, last in spans:
        piece = pieces[index]
        start = first + skip
        stop = min(last, first + skip + longest, piece.samples)
        clip = piece.read(start, max(stop - start, 0))
        spectrum = np.abs(np.fft.rfft(clip * np.hanning(len(clip)), n_fft))
        total += spectrum / max(float(spectrum.max()), 1e-12)
    return total / len(spans)


def _best_inharmonicity(
    spectrum: np.ndarray, fundamental: float, partials: int, sample_rate: int
) -> float | None:
    """The B of the grid whose partials 2..K fall on the most magnitude of ``spectrum``;
    None when fewer than two partials lie below the scored band's top."""
    n_bins = len(spectrum)
    bin_hz = sample_rate / (2 * (n_bins - 1))
    k = np.arange(2, partials + 1, dtype=np.float64)
    frequencies = fundamental * k[None, :] * np.sqrt(1.0 + B_GRID[:, None] * k[None, :] ** 2)
    scored = frequencies < NYQUIST_FRACTION * sample_rate / 2
    if int(scored[0].sum()) < 2:
        return None
    width = max(int(round(PEAK_WINDOW_HZ / bin_hz)), 1)
    padded = np.pad(spectrum, width)
    peaks = np.lib.stride_tricks.sliding_window_view(padded, 2 * width + 1).max(axis=-1)
    bins = np.clip(np.round(frequencies / bin_hz).astype(int), 0, n_bins - 1)
    # Every B is scored on the same partials (those in band when harmonic); one it
    # pushes out of band scores nothing, so a large B cannot win by dropping partials.
    # Magnitudes, not their logs, are summed: the strong partials decide, and the weak
    # ones, lost among the other notes' partials, hardly count.
    level = np.where(scored, peaks[bins], 0.0)
    score = np.where(scored[0][None, :], level, 0.0).sum(axis=1)
    return float(B_GRID[int(np.argmax(score))])


def estimate_inharmonicity(
    pieces: Sequence[TrainingPair],
    sample_rate: int,
    hop_length: int,
    partials: int,
    prior: tuple[float, float],
) -> InharmonicityEstimate:
    """B per key measured on ``pieces`` (see the module docstring), scoring partials up to
    ``partials``; ``prior`` (B of the lowest and the highest key, log-spaced between)
    gives the slope beyond the measured keys, and every key's B when none is measured."""
    by_key: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    shortest = round((SKIP_SECONDS + MIN_SECONDS) * sample_rate)
    for index, piece in enumerate(pieces):
        for key, spans in _note_spans(piece, hop_length).items():
            by_key[key] += [(index, a, b) for a, b in spans if b - a >= shortest]
    n_fft = 1 << math.ceil(math.log2(4 * MAX_SECONDS * sample_rate))
    measured = np.zeros(KEY_COUNT, dtype=bool)
    notes = np.zeros(KEY_COUNT, dtype=np.int64)
    log_b = np.zeros(KEY_COUNT)
    for key, key_notes in sorted(by_key.items()):
        if len(key_notes) < MIN_NOTES:
            continue
        chosen = key_notes[:MAX_NOTES]
        fundamental = float(pretty_midi.note_number_to_hz(key + LOWEST_KEY))
        spectrum = _key_spectrum(pieces, chosen, sample_rate, n_fft)
        best = _best_inharmonicity(spectrum, fundamental, partials, sample_rate)
        if best is None:
            continue
        measured[key], notes[key], log_b[key] = True, len(chosen), math.log(best)
    prior_log = np.linspace(math.log(prior[0]), math.log(prior[1]), KEY_COUNT)
    if not measured.any():
        return InharmonicityEstimate(np.exp(prior_log), notes, measured)
    known = np.flatnonzero(measured)
    filled = np.interp(np.arange(KEY_COUNT), known, log_b[known])
    low, high = known[0], known[-1]
    filled[:low] = log_b[low] + prior_log[:low] - prior_log[low]
    filled[high + 1 :] = log_b[high] + prior_log[high + 1 :] - prior_log[high]
    return InharmonicityEstimate(np.exp(filled), notes, measured)
