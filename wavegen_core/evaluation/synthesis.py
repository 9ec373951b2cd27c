"""How close synthesized audio comes to the truth: spectral distances and transcription consistency.

Against true audio: the multi-resolution STFT distance and the log-mel L1
(``wavegen_core.audio.spectral``). Against the MIDI that conditioned it, which is all a
composed piece has: *transcription consistency*, the note-onset F1 (mir_eval, 50 ms)
of the trained transcriber's notes on the synthesized audio against the conditioning
MIDI's notes. A vocoder that renders the right notes at the right times scores as
high as the transcriber does on real recordings. Our transcriber learnt the corpus's
own soundfont, so a *judge* that learnt neither (basic-pitch) scores the same
consistency beside it (``judge_onset_f1``): the figure a listener's ear stands for.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pretty_midi
import torch

from wavegen_core.audio.spectral import evaluation_mel, mel_l1, multi_resolution_stft
from wavegen_core.evaluation.transcription import note_onset_f1
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcription.onsets_frames import OnsetsAndFrames, transcribe_audio
from wavegen_core.params import TranscriptionConfig


def audio_distances(
    estimate: np.ndarray, reference: np.ndarray, sample_rate: int
) -> dict[str, float]:
    """Spectral distances between two equal-length mono signals (lower is closer)."""
    est = torch.from_numpy(np.asarray(estimate, dtype=np.float32))
    ref = torch.from_numpy(np.asarray(reference, dtype=np.float32))
    with torch.no_grad():
        stft = multi_resolution_stft(est, ref)
        mel = mel_l1(est, ref, evaluation_mel(sample_rate))
    return {
        "mr_stft": float(stft["total"]),
        "spectral_convergence": float(stft["spectral_convergence"]),
        "log_magnitude_l1": float(stft["log_magnitude"]),
        "mel_l1": float(mel),
    }


def notes_before(midi: pretty_midi.PrettyMIDI, seconds: float) -> list[pretty_midi.Note]:
    """The piano notes of ``midi`` that start before ``seconds``, ending by then at the latest."""
    return [
        pretty_midi.Note(note.velocity, note.pitch, note.start, min(note.end, seconds))
        for note in piano_notes(midi)
        if note.start < seconds
    ]


def transcription_consistency(
    audio: np.ndarray,
    reference: list[pretty_midi.Note],
    transcriber: OnsetsAndFrames,
    transcription: TranscriptionConfig,
    sample_rate: int,
) -> float:
    """Note-onset F1 of the transcription of ``audio`` against ``reference``."""
    transcribed = transcribe_audio(
        transcriber,
        np.asarray(audio, dtype=np.float32),
        sample_rate,
        transcription.decoding,
        transcription.chunk_seconds,
        transcription.overlap_seconds,
    )
    return note_onset_f1(reference, piano_notes(transcribed))


class Judge(Protocol):
    """A transcriber of samples in memory that did not learn our corpus (basic-pitch)."""

    def transcribe_audio(self, audio: np.ndarray, sample_rate: int) -> pretty_midi.PrettyMIDI: ...


def score_renders(
    renders: dict[str, np.ndarray],
    notes: list[pretty_midi.Note],
    true_audio: np.ndarray | None,
    transcriber: OnsetsAndFrames | None,
    transcription: TranscriptionConfig,
    sample_rate: int,
    judge: Judge | None = None,
) -> dict[str, dict[str, float]]:
    """Every score of one piece for each named render of it (a vocoder's, the soundfont's).

    Each render gets its transcription consistency against ``notes`` by our transcriber
    (``onset_f1``, unless ``transcriber`` is None) and, given a ``judge``, by the judge
    (``judge_onset_f1``); where the piece has true
    audio (as long as the renders), also its spectral distances to it, and the entry
    ``true_audio`` holds both transcribers' onset F1 on it: their ceilings.
    """
    scores: dict[str, dict[str, float]] = {}
    named = dict(renders)
    if true_audio is not None:
        named["true_audio"] = true_audio
    for name, audio in named.items():
        scores[name] = {}
        if transcriber is not None:
            scores[name]["onset_f1"] = transcription_consistency(
                audio, notes, transcriber, transcription, sample_rate
            )
        if judge is not None:
            judged = piano_notes(judge.transcribe_audio(audio, sample_rate))
            scores[name]["judge_onset_f1"] = note_onset_f1(notes, judged)
        if true_audio is not None and name != "true_audio":
            scores[name].update(audio_distances(audio, true_audio, sample_rate))
    return scores


def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each score over pieces (an empty dict for no pieces)."""
    if not scores:
        return {}
    return {name: float(np.mean([entry[name] for entry in scores])) for name in scores[0]}
