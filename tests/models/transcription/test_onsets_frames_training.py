"""A tiny Onsets and Frames learns to transcribe the chorales it is trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from wavegen_core.audio.io import load_audio
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.prepare import prepare_corpus
from wavegen_core.evaluation.transcription import note_onset_f1
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import NoteDecodingConfig, midi_to_targets, piano_notes
from wavegen_core.models.transcription.config import TranscriberModelConfig
from wavegen_core.models.transcription.onsets_frames import (
    OnsetsAndFrames,
    transcribe_audio,
    transcription_loss,
)
from wavegen_core.params import validate_params
from wavegen_core.seeding import seed_everything

CLIP_SECONDS = 2.0
STEPS = 250
LEARNING_RATE = 1e-2
# The paper's thresholds: with onset positives weighted (the tiny default) the
# briefly trained detector is confident enough.
DECODING = NoteDecodingConfig(onset_threshold=0.5, frame_threshold=0.5)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[np.ndarray, pretty_midi.PrettyMIDI]]:
    """The first seconds of three rendered chorales, with their MIDI."""
    corpus = Path(tmp_path_factory.mktemp("corpus"))
    params = validate_params({"data": {"max_pieces": 3, "num_workers": 1}})
    prepare_corpus(params.prepare_job(), corpus)
    sample_rate = 16000
    return [
        (
            load_audio(corpus / piece.audio, sample_rate)[: int(CLIP_SECONDS * sample_rate)],
            load_midi(corpus / str(piece.midi)),
        )
        for piece in read_manifest(corpus)
    ]


def _onset_f1(model: OnsetsAndFrames, clips) -> float:
    """Mean note-onset F1 (50 ms, pitch; offsets ignored) over the clips, mir_eval's."""
    scores = []
    for audio, midi in clips:
        estimated = transcribe_audio(model, audio, 16000, DECODING, 30.0, 1.0).instruments[0].notes
        # Notes starting in the clip's last 100 ms have too little audio to be heard.
        reference = [note for note in piano_notes(midi) if note.start < CLIP_SECONDS - 0.1]
        scores.append(note_onset_f1(reference, estimated))
    return float(np.mean(scores))


def test_tiny_model_learns_the_training_chorales(clips) -> None:
    seed_everything(0)
    config = TranscriberModelConfig(conv_dropout=0.0, fc_dropout=0.0)
    model = OnsetsAndFrames(config)
    mel = torch.stack([model.frontend(torch.from_numpy(audio)) for audio, _ in clips])
    per_clip = [midi_to_targets(midi, mel.shape[1], model.frames_per_second) for _, midi in clips]
    targets = {
        name: torch.stack([torch.from_numpy(clip[name]) for clip in per_clip])
        for name in per_clip[0]
    }
    untrained_f1 = _onset_f1(model, clips)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    losses = []
    for _ in range(STEPS):
        model.train()
        loss, _ = transcription_loss(model(mel), targets, config)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
    trained_f1 = _onset_f1(model, clips)

    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}", end="; ")
    print(f"onset F1 {untrained_f1:.3f} -> {trained_f1:.3f}")
    assert losses[-1] < losses[0] / 10
    assert trained_f1 > untrained_f1 + 0.2

    # Transcription consistency (what the vocoders are scored with) tells the true audio
    # from a noise render of the same length: a function returning 0 would fail here.
    from wavegen_core.evaluation.synthesis import transcription_consistency
    from wavegen_core.params import TranscriptionConfig

    settings = TranscriptionConfig(decoding=DECODING, chunk_seconds=30.0, overlap_seconds=1.0)
    noise = np.random.default_rng(0).normal(0.0, 0.1, len(clips[0][0])).astype(np.float32)
    reference = [n for n in piano_notes(clips[0][1]) if n.start < CLIP_SECONDS - 0.1]
    true_audio = transcription_consistency(clips[0][0], reference, model, settings, 16000)
    noise_render = transcription_consistency(noise, reference, model, settings, 16000)
    print(f"consistency: true audio {true_audio:.3f}, noise {noise_render:.3f}")
    assert true_audio > 0.5 and true_audio > noise_render + 0.4
