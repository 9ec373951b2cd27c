"""Onsets and Frames: polyphonic piano transcription (Hawthorne et al. 2018).

Read top to bottom: the acoustic model and the recurrent stack (building blocks), the
model with its onset, offset, frame and velocity heads, the training losses, and
inference (chunked prediction over long audio, decoding into MIDI), and the spec.

The offset head is the addition of the MAESTRO paper (Hawthorne et al. 2019,
section 4): like the onset head it feeds the frame head, and it is not used to decode.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pretty_midi
import torch
import torch.nn.functional as F
from torch import nn

from wavegen_core import parallel
from wavegen_core.audio.io import stream_audio
from wavegen_core.audio.mel import LogMelSpectrogram
from wavegen_core.midi.rolls import KEY_COUNT, NoteDecoder, NoteDecodingConfig, notes_to_midi
from wavegen_core.models.spec import ModelSpec
from wavegen_core.models.transcription.config import TranscriberModelConfig

# --------------------------------------------------------------------------- building blocks


def _conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        parallel.SyncBatchNorm(out_channels),  # over the global batch under torchrun
        nn.ReLU(),
    ]


class AcousticModel(nn.Module):
    """Log-mel (batch, frames, n_mels) -> features (batch, frames, fc_units).

    The convolutional acoustic model of Kelz et al. 2016 as used in Hawthorne et al.
    2018, section 3: three 3x3 conv-BN-ReLU layers, max-pooling by 2 over frequency
    (never over time, so every frame keeps its own output) after the second and
    third, dropout, then a fully connected layer. Padding keeps the frame count.
    """

    def __init__(self, config: TranscriberModelConfig) -> None:
        super().__init__()
        first, second, third = config.conv_channels
        pool_over_frequency = nn.MaxPool2d(kernel_size=(1, 2))
        self.convolutions = nn.Sequential(
            *_conv_block(1, first),
            *_conv_block(first, second),
            pool_over_frequency,
            nn.Dropout(config.conv_dropout),
            *_conv_block(second, third),
            pool_over_frequency,
            nn.Dropout(config.conv_dropout),
        )
        pooled_bins = config.mel.n_mels // 4
        self.fully_connected = nn.Sequential(
            nn.Linear(third * pooled_bins, config.fc_units),
            nn.ReLU(),
            nn.Dropout(config.fc_dropout),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        feature_maps = self.convolutions(mel.unsqueeze(1))  # (batch, channels, frames, bins)
        batch, channels, frames, bins = feature_maps.shape
        per_frame = feature_maps.permute(0, 2, 1, 3).reshape(batch, frames, channels * bins)
        return self.fully_connected(per_frame)


class RecurrentKeys(nn.Module):
    """Features (batch, frames, in) -> one logit per key (batch, frames, 88) through an LSTM."""

    def __init__(self, in_features: int, config: TranscriberModelConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            in_features, config.lstm_units, batch_first=True, bidirectional=config.bidirectional
        )
        directions = 2 if config.bidirectional else 1
        self.to_keys = nn.Linear(config.lstm_units * directions, KEY_COUNT)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.lstm(features)
        return self.to_keys(sequence)


class OnsetStack(nn.Module):
    """Acoustic model -> (bi)LSTM -> 88 logits: the onset head, and the offset head."""

    def __init__(self, config: TranscriberModelConfig) -> None:
        super().__init__()
        self.acoustic = AcousticModel(config)
        self.recurrent = RecurrentKeys(config.fc_units, config)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.recurrent(self.acoustic(mel))


# --------------------------------------------------------------------------- the model


class OnsetsAndFrames(nn.Module):
    """The transcriber: log-mel in, per-key onset, offset, frame logits and velocity out.

    The frame head sees the onset and offset probabilities with their gradient stopped
    (Hawthorne et al. 2018, section 3), so the frame loss trains only the frame stack
    and each detector is trained by its own loss alone.
    """

    def __init__(self, config: TranscriberModelConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = LogMelSpectrogram(config.mel)
        self.onset_head = OnsetStack(config)
        self.offset_head = OnsetStack(config)
        self.frame_acoustic = AcousticModel(config)
        self.frame_activation = nn.Linear(config.fc_units, KEY_COUNT)
        self.frame_head = RecurrentKeys(3 * KEY_COUNT, config)
        self.velocity_acoustic = AcousticModel(config)
        self.velocity_head = nn.Linear(config.fc_units, KEY_COUNT)

    @property
    def frames_per_second(self) -> float:
        return self.config.mel.frames_per_second

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """``mel`` (batch, frames, n_mels) -> each output (batch, frames, 88).

        ``velocity`` is the predicted velocity as a fraction of 127, unbounded; decoding
        clips it to [0, 1].
        """
        onset_logits = self.onset_head(mel)
        offset_logits = self.offset_head(mel)
        frame_activations = torch.sigmoid(self.frame_activation(self.frame_acoustic(mel)))
        combined = torch.cat(
            [
                frame_activations,
                torch.sigmoid(onset_logits).detach(),
                torch.sigmoid(offset_logits).detach(),
            ],
            dim=-1,
        )
        return {
            "onset_logits": onset_logits,
            "offset_logits": offset_logits,
            "frame_logits": self.frame_head(combined),
            "velocity": self.velocity_head(self.velocity_acoustic(mel)),
        }


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


# --------------------------------------------------------------------------- losses


def onset_weighted_frames(
    onsets: torch.Tensor, frames: torch.Tensor, config: TranscriberModelConfig
) -> torch.Tensor:
    """Per-element weights of the frame loss, heaviest where notes begin.

    The weighted frame loss of Hawthorne et al. 2018, section 3, which makes the frame
    head accurate where notes begin: while a key sounds, the first
    ``onset_weight_frames`` frames from its latest onset weigh ``onset_weight``, the
    k-th frame after them ``onset_weight / sqrt(k + 1)``, never below 1; frames where
    the key is silent weigh 1.
    """
    frame_index = torch.arange(onsets.shape[1], device=onsets.device).view(1, -1, 1)
    onset_frames = torch.where(onsets > 0, frame_index, torch.full_like(frame_index, -1))
    latest_onset = torch.cummax(onset_frames.expand_as(onsets), dim=1).values
    since_start = frame_index - latest_onset - config.onset_weight_frames + 2
    decayed = config.onset_weight / since_start.clamp(min=1).to(frames.dtype).sqrt()
    decayed = torch.where(since_start < 2, config.onset_weight, decayed.clamp(min=1.0))
    in_note = (latest_onset >= 0) & (frames > 0)
    return torch.where(in_note, decayed, torch.ones_like(decayed))


def transcription_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    config: TranscriberModelConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of Hawthorne et al. 2018, section 3, and its detached parts.

    Binary cross-entropy for onsets and offsets (positives weighted by
    ``onset_positive_weight``) and (onset-weighted) frames, and for
    velocity the squared error at onset frames only, normalised by their number
    (velocity is undefined where no note starts). ``targets`` are keyed as in
    :func:`wavegen_core.midi.rolls.midi_to_targets`.
    """
    onsets, frames = targets["onsets"], targets["frames"]
    positive_weight = torch.tensor(config.onset_positive_weight, device=onsets.device)
    onset = F.binary_cross_entropy_with_logits(
        outputs["onset_logits"], onsets, pos_weight=positive_weight
    )
    offset = F.binary_cross_entropy_with_logits(
        outputs["offset_logits"], targets["offsets"], pos_weight=positive_weight
    )
    frame = F.binary_cross_entropy_with_logits(
        outputs["frame_logits"], frames, weight=onset_weighted_frames(onsets, frames, config)
    )
    squared_error = onsets * (targets["velocity"] - outputs["velocity"]) ** 2
    # Under torchrun: the global batch's onset count, so ranks average to one process.
    velocity = squared_error.sum() / parallel.global_denominator(onsets.sum())
    total = onset + offset + frame + config.velocity_loss_weight * velocity
    parts = {"onset": onset, "offset": offset, "frame": frame, "velocity": velocity}
    return total, {name: part.detach() for name, part in parts.items()}


# --------------------------------------------------------------------------- inference


class _SampleWindow:
    """A sliding window over audio arriving in blocks: absolute sample indices in, the
    samples read so far kept only from where the next chunk may start."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = iter(blocks)
        self._samples = np.zeros(0, dtype=np.float32)
        self.offset = 0  # absolute index of self._samples[0]
        self.exhausted = False

    @property
    def end(self) -> int:
        return self.offset + len(self._samples)

    def fill_to(self, index: int) -> None:
        parts = [self._samples]
        end = self.end
        while end < index and not self.exhausted:
            block = next(self._blocks, None)
            if block is None:
                self.exhausted = True
            else:
                if block.ndim != 1:
                    raise ValueError(f"expected mono audio of shape (samples,), got {block.shape}")
                parts.append(np.asarray(block, dtype=np.float32))
                end += len(block)
        self._samples = np.concatenate(parts) if len(parts) > 1 else self._samples

    def pad_to(self, length: int) -> None:
        """Zero-pad the end so the whole recording holds at least ``length`` samples."""
        if self.end < length:
            self._samples = np.concatenate([self._samples, np.zeros(length - self.end, np.float32)])

    def slice(self, start: int, stop: int) -> np.ndarray:
        return self._samples[start - self.offset : stop - self.offset]

    def drop_before(self, index: int) -> None:
        index = max(self.offset, min(index, self.end))
        self._samples = self._samples[index - self.offset :].copy()
        self.offset = index


@torch.no_grad()
def iter_activations(
    model: OnsetsAndFrames,
    blocks: Iterable[np.ndarray],
    chunk_seconds: float,
    overlap_seconds: float,
) -> Iterator[dict[str, np.ndarray]]:
    """Frame-wise predictions for consecutive chunks of mono audio arriving in blocks.

    Yields, chunk by chunk, ``onset_probs``, ``offset_probs``, ``frame_probs`` and
    ``velocity`` of shape (chunk frames, 88), the frames of the whole recording in
    order. Each chunk of ``chunk_seconds`` is run with ``overlap_seconds`` of real
    audio on both sides as context; only its own frames are kept, so the edges of the
    convolutions and LSTMs fall in discarded context. Audio is read only as far as
    the next chunk needs and dropped once behind it, so memory is bounded by the
    chunk, not the recording. The model is put in eval mode.
    """
    mel = model.config.mel
    model.eval()
    device = next(model.parameters()).device
    hop, n_fft = mel.hop_length, mel.n_fft
    chunk_frames = max(1, round(chunk_seconds * mel.frames_per_second))
    context_frames = round(overlap_seconds * mel.frames_per_second)
    window = _SampleWindow(blocks)
    first = 0
    while True:
        window.fill_to((first + chunk_frames + context_frames) * hop + n_fft)
        if window.exhausted:
            # Reflect padding needs more than n_fft // 2 samples.
            window.pad_to(n_fft)
        available = window.end
        total_frames = available // hop + 1 if window.exhausted else None
        end = (
            first + chunk_frames
            if total_frames is None
            else min(first + chunk_frames, total_frames)
        )
        if end <= first:
            return
        last_full_window = (available - n_fft) // hop
        # Segments start on the frame grid, so their frames are the recording's frames.
        segment_first = max(0, min(first - context_frames, last_full_window))
        segment_end = end + context_frames
        if total_frames is not None:
            segment_end = min(total_frames, segment_end)
        segment = window.slice(segment_first * hop, segment_end * hop)
        log_mel = model.frontend(torch.from_numpy(np.ascontiguousarray(segment)).to(device)[None])
        outputs = _activations(model(log_mel))
        own = slice(first - segment_first, end - segment_first)
        yield {name: values[0, own].cpu().numpy() for name, values in outputs.items()}
        if total_frames is not None and end >= total_frames:
            return
        first = end
        # Keep what the next segment may start from (it can reach back n_fft at the end).
        window.drop_before((first - context_frames) * hop - n_fft)


def predict_activations(
    model: OnsetsAndFrames, audio: np.ndarray, chunk_seconds: float, overlap_seconds: float
) -> dict[str, np.ndarray]:
    """Frame-wise predictions (n_frames, 88) for mono audio at the model's sample rate.

    The chunks of :func:`iter_activations`, concatenated: ``onset_probs``,
    ``offset_probs``, ``frame_probs`` and ``velocity``.
    """
    chunks = list(iter_activations(model, [audio], chunk_seconds, overlap_seconds))
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _activations(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        "onset_probs": torch.sigmoid(outputs["onset_logits"]),
        "offset_probs": torch.sigmoid(outputs["offset_logits"]),
        "frame_probs": torch.sigmoid(outputs["frame_logits"]),
        "velocity": outputs["velocity"],
    }


def transcribe_stream(
    model: OnsetsAndFrames,
    blocks: Iterable[np.ndarray],
    decoding: NoteDecodingConfig,
    chunk_seconds: float,
    overlap_seconds: float,
) -> pretty_midi.PrettyMIDI:
    """Transcribe mono audio arriving in blocks (at the model's rate) into piano MIDI.

    Predictions are decoded chunk by chunk (:class:`NoteDecoder`), so nothing but the
    notes grows with the recording's length.
    """
    decoder = NoteDecoder(decoding, model.frames_per_second)
    for chunk in iter_activations(model, blocks, chunk_seconds, overlap_seconds):
        decoder.feed(chunk["onset_probs"], chunk["frame_probs"], chunk["velocity"])
    return notes_to_midi(decoder.finish())


def transcribe_audio(
    model: OnsetsAndFrames,
    audio: np.ndarray,
    sample_rate: int,
    decoding: NoteDecodingConfig,
    chunk_seconds: float,
    overlap_seconds: float,
) -> pretty_midi.PrettyMIDI:
    """Transcribe mono float32 ``audio`` into piano MIDI (see :func:`transcribe_stream`)."""
    if sample_rate != model.config.mel.sample_rate:
        raise ValueError(
            f"audio at {sample_rate} Hz given to a model of {model.config.mel.sample_rate} Hz; "
            "resample it first (load_audio does)"
        )
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got shape {audio.shape}")
    return transcribe_stream(model, [audio], decoding, chunk_seconds, overlap_seconds)


def transcribe_file(
    model: OnsetsAndFrames,
    path: str | os.PathLike[str],
    decoding: NoteDecodingConfig,
    chunk_seconds: float,
    overlap_seconds: float,
) -> pretty_midi.PrettyMIDI:
    """Transcribe an audio file of any rate, channel count and length into piano MIDI,
    reading it block by block (memory bounded by the chunk, not the file)."""
    blocks = stream_audio(path, model.config.mel.sample_rate, block_seconds=chunk_seconds)
    return transcribe_stream(model, blocks, decoding, chunk_seconds, overlap_seconds)


# --------------------------------------------------------------------------- spec


class TranscriberSpec(ModelSpec[OnsetsAndFrames]):
    """The transcriber's checkpoint records its model config and training excerpt length."""

    name = "transcriber"

    def checkpoint_config(
        self, model: TranscriberModelConfig, *, segment_seconds: float, seed: int
    ) -> dict[str, Any]:
        return {
            "model": model.model_dump(mode="json"),
            "segment_seconds": segment_seconds,
            "seed": seed,
        }

    def build(self, saved: Mapping[str, Any]) -> OnsetsAndFrames:
        return OnsetsAndFrames(TranscriberModelConfig.model_validate(saved["model"]))


SPEC = TranscriberSpec()
