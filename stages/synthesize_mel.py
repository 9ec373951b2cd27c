"""Stage `synthesize_mel@<family>`: a mel-conditioned family renders MIDI through the mels
of another family's render (MIDI -> spectrogram -> waveform), scored as `synthesize` is.

`python -m stages.synthesize_mel FAMILY --mel-source FILE --corpus DIR --composed DIR
--checkpoint FILE --transcriber FILE --out DIR --reports DIR` takes the checkpoint of
`train_vocoder_mel@<family>` and that of `vocoder.mel.source` (`--mel-source`, DDSP by
default). The source renders each piece's MIDI; the log-mel frames of that render, made
as in training, condition the family, whose render is the row `<family>_mel`. For the
test pieces the family also renders from the true audio's mel, the row
`<family>_true_mel`: what a perfect spectrogram would give, the ceiling of the two-stage
design. Both sit beside FluidSynth, sine and noise, as in `synthesize@<family>`. A source
at another sample rate or hop than the family's is refused, naming both.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from stages._common import run_family_stage
from stages._synthesize import PATHS as SYNTHESIZE_PATHS
from stages._synthesize import load_for_synthesis, render, score_and_write
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.errors import WavegenError
from wavegen_core.models.vocoders.conditioning import MelFrames, check_mel_source
from wavegen_core.models.vocoders.registry import render_pieces, vocoder_spec
from wavegen_core.params import Params
from wavegen_core.progress import log

PATHS = {
    "mel_source": "the checkpoint of the family whose render gives the mels",
    **SYNTHESIZE_PATHS,
}


def mel_frames_of(model: torch.nn.Module, checkpoint: str) -> MelFrames:
    """The mel front end a mel-conditioned model was trained with; WavegenError for a
    model conditioned on the roll alone."""
    frames = getattr(getattr(model, "conditioning", None), "mel_frames", None)
    if not isinstance(frames, MelFrames):
        raise WavegenError(
            f"{checkpoint} is not conditioned on log-mel frames (train it with "
            "train_vocoder_mel, not train_vocoder)"
        )
    return frames


def synthesize_on_mel(params: Params, args: argparse.Namespace) -> None:
    family = args.family
    stage = f"synthesize_mel@{family}"
    loaded = load_for_synthesis(params, args, stage)
    frames = mel_frames_of(loaded.model, str(args.checkpoint))
    # Checked before the source is built: its weights may not even fit another rate.
    checkpoint = load_checkpoint(args.mel_source, map_location=loaded.device)
    saved = checkpoint["config"]
    source_spec = vocoder_spec(saved["family"])
    try:
        check_mel_source(
            int(saved["sample_rate"]),
            int(saved["conditioning"]["hop_length"]),
            params.audio.sample_rate,
            frames.hop_length,
            f"{source_spec.name} ({args.mel_source})",
            f"{family} ({args.checkpoint})",
        )
    except ValueError as error:
        raise WavegenError(str(error)) from None
    source_model = source_spec.from_checkpoint(checkpoint, loaded.device)
    config = params.vocoder.synthesize
    log.info("%s: rendering the mels' source, %s", stage, source_spec.name)
    drawn = render_pieces(
        source_spec,
        source_model,
        [job.roll for job in loaded.jobs],
        chunk_frames=config.chunk_frames,
        context_frames=config.context_frames,
        generator=torch.Generator(device=loaded.device).manual_seed(params.seed),
        temperature=config.temperature_of(source_spec.name),
    )
    conditions = [
        frames.attach_to_piece(job.roll, audio)
        for job, audio in zip(loaded.jobs, drawn, strict=True)
    ]
    with_truth = [job for job in loaded.jobs if job.true_audio is not None]
    truth = render(
        params,
        loaded,
        [frames.attach_to_piece(job.roll, job.true_audio) for job in with_truth],  # type: ignore[arg-type]
    )
    by_id = {id(job): audio for job, audio in zip(with_truth, truth, strict=True)}
    ceiling: list[np.ndarray | None] = [by_id.get(id(job)) for job in loaded.jobs]
    score_and_write(
        params, args, loaded, f"{family}_mel", conditions, {f"{family}_true_mel": ceiling}
    )


def main(argv: list[str] | None = None) -> int:
    return run_family_stage(
        "synthesize_mel", PATHS, synthesize_on_mel, argv, listed_in="mel.families"
    )


if __name__ == "__main__":
    sys.exit(main())
