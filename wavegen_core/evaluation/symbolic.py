"""Statistics of composed piano pieces against a reference set, on lists of pretty_midi notes.

A generative model of symbolic music (the Music Transformer of Huang et al. 2019) has no
ground truth to score a sample against, so its samples are judged as a set: are their
pitch classes, rhythms, densities and textures distributed like those of held-out
pieces? These are the per-piece and pooled statistics of that comparison, in the spirit
of Yang and Lerch 2020 ("On the evaluation of generative models in music"): pitch-class
and inter-onset-interval histograms compared by total variation distance, and note
density, polyphony and pitch range reported side by side for the two sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

# Onsets closer than this (seconds) to the first onset of a group are one chord onset:
# a pianist's chord is never perfectly simultaneous, and a transcription even less so.
CHORD_TOLERANCE = 0.01
# Inter-onset-interval histogram bins, half-open [low, high) in seconds. Fine below
# 0.2 s, where ornaments, fast runs and chord spreads sit, coarser above, where beats and
# rests sit (a quarter note lasts 0.5 s at 120 bpm); the last bin catches every pause
# longer than 2 s. Every interval is at least CHORD_TOLERANCE, so the first bin holds
# only intervals of 10 to 20 ms.
IOI_BIN_EDGES = np.array(
    [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, np.inf]
)
# Intervals are rounded to this many decimals before binning, so that a difference of
# float onsets such as 0.3 - 0.1 lands in the bin of 0.2 s and not just below it.
_IOI_DECIMALS = 6
# Means :func:`compare_sets` reports, each beside its ``reference_`` twin.
SCALAR_NAMES = ("note_density", "mean_polyphony", "pitch_range")


def _normalised(counts: np.ndarray) -> np.ndarray:
    """Counts divided by their sum; zeros where there is nothing to count."""
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(len(counts))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


# eq=False: the generated __eq__ would compare arrays with ``==`` and fail, and a frozen
# dataclass with eq would try to hash them.
@dataclass(frozen=True, eq=False)
class PieceStatistics:
    """What :func:`compare_sets` compares, for one piece.

    The histograms are kept as raw counts, since a set's histogram pools the counts of
    its pieces (a long piece weighs more than a short one); the normalised histograms
    are properties of those counts.
    """

    pitch_class_counts: np.ndarray  # (12,) notes per pitch class, C first
    ioi_counts: np.ndarray  # (len(IOI_BIN_EDGES) - 1,) inter-onset intervals per bin
    note_density: float  # notes per second over the piece's span
    mean_polyphony: float  # mean number of sounding notes while at least one sounds
    pitch_range: int  # highest minus lowest pitch, in semitones
    notes: int
    seconds: float  # the span: first onset to last offset

    @property
    def pitch_class_histogram(self) -> np.ndarray:
        """Share of the notes in each pitch class; zeros if there are no notes."""
        return _normalised(self.pitch_class_counts)

    @property
    def ioi_histogram(self) -> np.ndarray:
        """Share of the inter-onset intervals in each bin; zeros if there are none."""
        return _normalised(self.ioi_counts)


def chord_onsets(notes: list[pretty_midi.Note]) -> np.ndarray:
    """The distinct onset times, a chord's onsets (within CHORD_TOLERANCE) as one.

    Each group is anchored at its earliest onset, so a slow arpeggio of notes 8 ms
    apart does not chain into one long chord.
    """
    onsets: list[float] = []
    for start in sorted(note.start for note in notes):
        if not onsets or start - onsets[-1] >= CHORD_TOLERANCE:
            onsets.append(start)
    return np.array(onsets)


def ioi_counts(notes: list[pretty_midi.Note]) -> np.ndarray:
    """Counts of the intervals between successive chord onsets over IOI_BIN_EDGES."""
    intervals = np.round(np.diff(chord_onsets(notes)), _IOI_DECIMALS)
    bins = np.searchsorted(IOI_BIN_EDGES, intervals, side="right") - 1
    return np.bincount(bins, minlength=len(IOI_BIN_EDGES) - 1)


def _sounding_seconds(notes: list[pretty_midi.Note]) -> float:
    """Length of the union of the notes' intervals: the time at least one note sounds."""
    total, covered_until = 0.0, -np.inf
    for start, end in sorted((note.start, note.end) for note in notes):
        # Zero-length (or reversed) notes and notes inside the covered time add nothing.
        if end > max(start, covered_until):
            total += end - max(start, covered_until)
            covered_until = end
    return total


def piece_statistics(notes: list[pretty_midi.Note]) -> PieceStatistics:
    """The statistics of one piece; all zero for a piece without notes.

    Mean polyphony is exact rather than sampled: the integral of the number of sounding
    notes over time is the sum of the notes' lengths, and dividing it by the time when
    at least one note sounds gives the mean over that time (rests do not count).
    """
    if not notes:
        return PieceStatistics(
            pitch_class_counts=_read_only(np.zeros(12, dtype=np.int64)),
            ioi_counts=_read_only(np.zeros(len(IOI_BIN_EDGES) - 1, dtype=np.int64)),
            note_density=0.0,
            mean_polyphony=0.0,
            pitch_range=0,
            notes=0,
            seconds=0.0,
        )
    pitches = np.array([note.pitch for note in notes])
    seconds = max(note.end for note in notes) - min(note.start for note in notes)
    sounding = _sounding_seconds(notes)
    played = sum(max(note.end - note.start, 0.0) for note in notes)
    return PieceStatistics(
        pitch_class_counts=_read_only(np.bincount(pitches % 12, minlength=12)),
        ioi_counts=_read_only(ioi_counts(notes)),
        # A span of zero (only zero-length notes) has no meaningful rate: reported as 0.
        note_density=len(notes) / seconds if seconds > 0 else 0.0,
        mean_polyphony=played / sounding if sounding > 0 else 0.0,
        pitch_range=int(pitches.max() - pitches.min()),
        notes=len(notes),
        seconds=float(seconds),
    )


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance 0.5 * sum|a - b| of two normalised histograms, in [0, 1].

    0 for identical histograms, 1 for histograms with no bin in common.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"histograms of different shapes: {a.shape} and {b.shape}")
    for name, histogram in (("first", a), ("second", b)):
        if np.any(histogram < 0) or not np.isclose(histogram.sum(), 1.0):
            raise ValueError(f"the {name} histogram is not normalised (sum {histogram.sum()})")
    return float(0.5 * np.abs(a - b).sum())


def _pooled_distance(a_counts: np.ndarray, b_counts: np.ndarray) -> float:
    """Distance of two pooled count vectors; a side with nothing counted is maximally far.

    Two sets without any count are alike (0); one without is as far as can be (1), so
    that a degenerate set of samples (single chords, say) scores worst, not undefined.
    """
    a_total, b_total = a_counts.sum(), b_counts.sum()
    if a_total == 0 or b_total == 0:
        return 0.0 if a_total == b_total else 1.0
    return histogram_distance(a_counts / a_total, b_counts / b_total)


def compare_sets(
    generated: list[list[pretty_midi.Note]], reference: list[list[pretty_midi.Note]]
) -> dict[str, float]:
    """Distances of the two sets' pooled histograms and their mean statistics side by side.

    Flat, for a DVC metrics file: ``pitch_class_histogram_distance`` and
    ``ioi_histogram_distance`` between the sets' histograms of pooled counts, then for
    each of :data:`SCALAR_NAMES` the mean over the generated pieces and, as
    ``reference_<name>``, over the reference pieces. Pieces without notes are left out
    of the means (they add nothing to the pooled counts either).
    """
    stats: dict[str, list[PieceStatistics]] = {}
    for role, pieces in (("generated", generated), ("reference", reference)):
        stats[role] = [piece_statistics(notes) for notes in pieces if notes]
        if not stats[role]:
            raise ValueError(f"the {role} set holds no notes ({len(pieces)} pieces)")
    gen, ref = stats["generated"], stats["reference"]
    metrics = {
        "pitch_class_histogram_distance": _pooled_distance(
            np.sum([s.pitch_class_counts for s in gen], axis=0),
            np.sum([s.pitch_class_counts for s in ref], axis=0),
        ),
        "ioi_histogram_distance": _pooled_distance(
            np.sum([s.ioi_counts for s in gen], axis=0),
            np.sum([s.ioi_counts for s in ref], axis=0),
        ),
    }
    for name in SCALAR_NAMES:
        metrics[name] = float(np.mean([getattr(s, name) for s in gen]))
        metrics[f"reference_{name}"] = float(np.mean([getattr(s, name) for s in ref]))
    return {name: round(value, 4) for name, value in metrics.items()}
