"""Model families, one file each: building blocks, the model, its losses and inference."""

from wavegen_core.models.onsets_frames import (
    OnsetsAndFrames,
    iter_activations,
    parameter_count,
    predict_activations,
    transcribe_audio,
    transcribe_file,
    transcribe_stream,
    transcription_loss,
)

__all__ = [
    "OnsetsAndFrames",
    "iter_activations",
    "parameter_count",
    "predict_activations",
    "transcribe_audio",
    "transcribe_file",
    "transcribe_stream",
    "transcription_loss",
]
