"""Onsets and Frames: shapes, the stopped gradient, losses and chunked inference."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegen_core.audio.io import load_audio, stream_audio
from wavegen_core.midi.rolls import KEY_COUNT, TARGET_NAMES, NoteDecodingConfig
from wavegen_core.models.transcription.config import TranscriberModelConfig
from wavegen_core.models.transcription.onsets_frames import (
    OnsetsAndFrames,
    iter_activations,
    onset_weighted_frames,
    parameter_count,
    predict_activations,
    transcribe_audio,
    transcribe_file,
    transcription_loss,
)

CONFIG = TranscriberModelConfig(
    mel={"n_mels": 32}, conv_channels=(4, 4, 8), fc_units=16, lstm_units=8
)
OUTPUTS = ("onset_logits", "offset_logits", "frame_logits", "velocity")


def _model(config: TranscriberModelConfig = CONFIG, seed: int = 0) -> OnsetsAndFrames:
    torch.manual_seed(seed)
    return OnsetsAndFrames(config)


def _targets(batch: int, frames: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    targets = {
        name: (torch.rand(batch, frames, KEY_COUNT, generator=generator) < 0.05).float()
        for name in TARGET_NAMES
    }
    targets["velocity"] = targets["onsets"] * 0.6
    return targets


@pytest.mark.parametrize("bidirectional", [True, False])
def test_output_shapes(bidirectional: bool) -> None:
    model = _model(CONFIG.model_copy(update={"bidirectional": bidirectional}))
    mel = model.frontend(torch.randn(3, 8000))
    outputs = model(mel)
    assert set(outputs) == set(OUTPUTS)
    assert all(outputs[name].shape == (3, mel.shape[1], KEY_COUNT) for name in OUTPUTS)
    assert parameter_count(model) > 0


def test_frame_loss_does_not_reach_the_onset_and_offset_heads() -> None:
    model = _model()
    outputs = model(model.frontend(torch.randn(2, 8000)))
    _, parts = transcription_loss(outputs, _targets(2, outputs["frame_logits"].shape[1]), CONFIG)
    frame_loss = torch.nn.functional.binary_cross_entropy_with_logits(
        outputs["frame_logits"], torch.ones_like(outputs["frame_logits"])
    )
    frame_loss.backward()
    for head in (model.onset_head, model.offset_head):
        assert all(parameter.grad is None for parameter in head.parameters())
    assert model.frame_head.lstm.weight_ih_l0.grad is not None
    assert model.frame_acoustic.fully_connected[0].weight.grad is not None
    assert set(parts) == {"onset", "offset", "frame", "velocity"}


def test_velocity_loss_counts_onset_frames_only() -> None:
    targets = _targets(1, 10)
    outputs = {name: torch.zeros(1, 10, KEY_COUNT) for name in OUTPUTS}
    outputs["velocity"] = targets["velocity"] + 0.5 * (1 - targets["onsets"])  # wrong elsewhere
    _, parts = transcription_loss(outputs, targets, CONFIG)
    assert parts["velocity"].item() == 0.0
    outputs["velocity"] = targets["velocity"] + 0.1
    _, parts = transcription_loss(outputs, targets, CONFIG)
    assert parts["velocity"].item() == pytest.approx(0.01)


def test_onset_weighting_is_heaviest_at_note_starts_and_decays() -> None:
    onsets = torch.zeros(1, 8, 1)
    frames = torch.zeros(1, 8, 1)
    onsets[0, [1, 4], 0] = 1.0
    frames[0, 1:7, 0] = 1.0  # a note from 1 to 4, re-struck at 4, ending at 7
    config = CONFIG.model_copy(update={"onset_weight": 5.0, "onset_weight_frames": 2})
    weights = onset_weighted_frames(onsets, frames, config)[0, :, 0].tolist()
    decayed = 5.0 / 2**0.5
    assert weights == pytest.approx([1.0, 5.0, 5.0, decayed, 5.0, 5.0, decayed, 1.0])
    long_note = torch.zeros(1, 40, 1)
    long_note[0, 0, 0] = 1.0
    weights = onset_weighted_frames(long_note, torch.ones(1, 40, 1), config)[0, :, 0]
    assert weights[2:].diff().le(0).all() and weights[-1].item() == 1.0


def test_positive_weight_scales_the_onset_loss_of_missed_onsets() -> None:
    targets = {name: torch.zeros(1, 4, 88) for name in ("onsets", "offsets", "frames", "velocity")}
    targets["onsets"][0, 1, 40] = 1.0
    outputs = {
        "onset_logits": torch.zeros(1, 4, 88),
        "offset_logits": torch.zeros(1, 4, 88),
        "frame_logits": torch.zeros(1, 4, 88),
        "velocity": torch.zeros(1, 4, 88),
    }
    plain_config = CONFIG.model_copy(update={"onset_positive_weight": 1.0})
    _, plain = transcription_loss(outputs, targets, plain_config)
    weighted_config = CONFIG.model_copy(update={"onset_positive_weight": 10.0})
    _, weighted = transcription_loss(outputs, targets, weighted_config)
    log2 = float(np.log(2.0))
    assert plain["onset"].item() == pytest.approx(log2)
    # One positive of 352 counts ten times: (351 + 10) / 352 of the plain loss.
    assert weighted["onset"].item() == pytest.approx(log2 * 361 / 352)


def test_chunked_inference_matches_a_single_pass() -> None:
    model = _model()
    # Push the batch-norm statistics off their defaults, so that eval mode matters.
    model(model.frontend(torch.randn(2, 8000)))
    rate = CONFIG.mel.sample_rate
    audio = np.random.default_rng(0).normal(0.0, 0.1, 10 * rate + 123).astype(np.float32)

    whole = predict_activations(model, audio, chunk_seconds=60.0, overlap_seconds=0.0)
    chunked = predict_activations(model, audio, chunk_seconds=3.0, overlap_seconds=1.0)

    assert whole["frame_probs"].shape == (len(audio) // CONFIG.mel.hop_length + 1, KEY_COUNT)
    for name, values in whole.items():
        assert chunked[name].shape == values.shape
        np.testing.assert_allclose(chunked[name], values, atol=1e-4, err_msg=name)


def test_streamed_file_gives_what_the_whole_file_gives(tmp_path) -> None:
    """A 44.1 kHz stereo file read block by block, resampled as it streams, transcribes
    to exactly what its fully loaded, resampled audio transcribes to."""
    model = _model()
    model(model.frontend(torch.randn(2, 8000)))
    rng = np.random.default_rng(1)
    stereo = rng.normal(0.0, 0.1, (44100 * 12 + 321, 2)).astype(np.float32)
    path = tmp_path / "take.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    audio = load_audio(path, CONFIG.mel.sample_rate)

    whole = predict_activations(model, audio, chunk_seconds=3.0, overlap_seconds=1.0)
    blocks = stream_audio(path, CONFIG.mel.sample_rate, block_seconds=1.7)
    chunks = list(iter_activations(model, blocks, chunk_seconds=3.0, overlap_seconds=1.0))
    for name, values in whole.items():
        np.testing.assert_array_equal(np.concatenate([c[name] for c in chunks]), values)

    decoding = NoteDecodingConfig(onset_threshold=0.45, frame_threshold=0.45)
    from_file = transcribe_file(model, path, decoding, 3.0, 1.0).instruments[0].notes
    from_audio = transcribe_audio(model, audio, 16000, decoding, 3.0, 1.0).instruments[0].notes
    assert [(n.pitch, n.start, n.end) for n in from_file] == [
        (n.pitch, n.start, n.end) for n in from_audio
    ]


def test_transcribe_audio_checks_its_input() -> None:
    model = _model()
    audio = np.zeros(16000, dtype=np.float32)
    with pytest.raises(ValueError, match="22050 Hz"):
        transcribe_audio(model, audio, 22050, NoteDecodingConfig(), 3.0, 1.0)
    with pytest.raises(ValueError, match="mono"):
        stereo = np.zeros((16000, 2), np.float32)
        transcribe_audio(model, stereo, 16000, NoteDecodingConfig(), 3.0, 1.0)
    midi = transcribe_audio(model, audio, 16000, NoteDecodingConfig(onset_threshold=1.0), 3.0, 1.0)
    assert len(midi.instruments) == 1
