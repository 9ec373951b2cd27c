"""Model families, one file each: building blocks, the model, its losses and inference."""

from wavegen_core.models.onsets_frames import (
    OnsetsAndFrames,
    parameter_count,
    predict_activations,
    transcribe_audio,
    transcribe_file,
    transcription_loss,
)

__all__ = [
    "OnsetsAndFrames",
    "parameter_count",
    "predict_activations",
    "transcribe_audio",
    "transcribe_file",
    "transcription_loss",
]
