"""The vocoder families by name, and rendering whole pieces with any of them.

Every family (``wavenet``, ``flow``, ``gan``...) is an ``nn.Module`` with the same face:
``loss(audio, roll)`` for training and ``generate(roll, generator=, temperature=,
progress=)`` for inference, conditioned by the same :class:`ConditioningNetwork`. A
family is a folder ``vocoders/<family>/``: its ``config.py`` names it (a
:class:`~wavegen_core.models.vocoders.config.VocoderSection`), and its ``model.py`` ends
with its spec. :func:`vocoder_spec` imports a family's model only when it is asked for
it, so a stage that runs one family runs (and depends on) that family's code alone.

:func:`render_pieces` turns whole pieces of any length into audio in bounded
memory: a family that streams a whole piece itself (the WaveNet, DDSP) renders a batch
of pieces at once; the parallel families render chunk by chunk, each chunk with
conditioning context on both sides, cropped and joined.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import torch
from torch import nn

from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.models.spec import VocoderSpec
from wavegen_core.models.vocoders.config import vocoder_sections
from wavegen_core.progress import progress_bar

FAMILIES_PACKAGE = "wavegen_core.models.vocoders"


def vocoder_families() -> list[str]:
    """Every family's name, in the order of their papers (from the families' configs;
    no network is imported)."""
    return list(vocoder_sections())


def family_module(family: str) -> str:
    """The module holding ``family``'s network and spec."""
    return f"{FAMILIES_PACKAGE}.{family}.model"


@functools.cache
def vocoder_spec(family: str) -> VocoderSpec[Any]:
    """The spec of ``family``; its model module is imported now, on first use."""
    families = vocoder_families()
    if family not in families:
        raise ValueError(f"unknown vocoder family {family!r}; allowed: {', '.join(families)}")
    return cast(VocoderSpec[Any], importlib.import_module(family_module(family)).SPEC)


class Vocoder(Protocol):
    """What every family offers (the models are also ``nn.Module``s).

    A roll given to ``loss`` may begin before its audio (training excerpts carry
    ``roll_history`` frames); ``generate`` renders the frames after ``history`` of its
    roll, whose first frame is frame ``first_frame`` of the piece. ``history_frames`` is
    how many frames before a chunk the family reads.
    """

    hop_length: int

    @property
    def history_frames(self) -> int: ...

    def loss(
        self, audio: torch.Tensor, roll: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def generate(
        self,
        roll: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
        progress: bool = False,
        history: int = 0,
        first_frame: int = 0,
    ) -> torch.Tensor: ...


class LoadedVocoder(NamedTuple):
    spec: VocoderSpec[Any]
    model: nn.Module
    sample_rate: int
    hop_length: int


def load_vocoder(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedVocoder:
    """A trained vocoder of any family, with its spec and sample rate, from its checkpoint."""
    checkpoint = load_checkpoint(path, map_location=device)
    saved = checkpoint["config"]
    spec = vocoder_spec(saved["family"])
    model = spec.from_checkpoint(checkpoint, device)
    hop_length = int(saved["conditioning"]["hop_length"])
    return LoadedVocoder(spec, model, int(saved["sample_rate"]), hop_length)


def _render_chunked(
    model: nn.Module,
    roll: torch.Tensor,
    *,
    chunk_frames: int,
    context_frames: int,
    generator: torch.Generator | None,
    temperature: float | None,
) -> torch.Tensor:
    """One piece's (ROLL_CHANNELS, frames) roll -> (frames * hop,) audio, chunk by chunk;
    each chunk also gets the frames before its context that the family reads."""
    vocoder = cast(Vocoder, model)
    hop = vocoder.hop_length
    frames = roll.shape[-1]
    pieces = []
    for start in range(0, frames, chunk_frames):
        stop = min(start + chunk_frames, frames)
        left, right = max(start - context_frames, 0), min(stop + context_frames, frames)
        earliest = max(left - vocoder.history_frames, 0)
        audio = vocoder.generate(
            roll[None, :, earliest:right],
            generator=generator,
            temperature=temperature,
            history=left - earliest,
            first_frame=earliest,
        )[0]
        pieces.append(audio[(start - left) * hop : (stop - left) * hop])
    return torch.cat(pieces)


@torch.no_grad()
def render_pieces(
    spec: VocoderSpec[Any],
    model: nn.Module,
    rolls: list[np.ndarray],
    *,
    chunk_frames: int,
    context_frames: int,
    generator: torch.Generator | None = None,
    temperature: float | None = None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Audio (float32, ``frames * hop`` samples) for each (ROLL_CHANNELS, frames) roll.

    A family that renders whole pieces itself takes all pieces as one batch (padded to
    the longest, then cut); another renders each piece in chunks of ``chunk_frames``
    frames with ``context_frames`` of conditioning on either side, so memory is bounded
    by the chunk. ``temperature`` None is the family's own param.
    """
    if not rolls:
        return []
    device = next(model.parameters()).device
    hop = cast(Vocoder, model).hop_length
    if spec.whole_pieces:
        longest = max(roll.shape[1] for roll in rolls)
        batch = np.zeros((len(rolls), rolls[0].shape[0], longest), dtype=np.float32)
        for index, roll in enumerate(rolls):
            batch[index, :, : roll.shape[1]] = roll
        audio = cast(Vocoder, model).generate(
            torch.from_numpy(batch).to(device),
            generator=generator,
            temperature=temperature,
            progress=progress,
        )
        return [
            audio[index, : roll.shape[1] * hop].float().cpu().numpy()
            for index, roll in enumerate(rolls)
        ]
    rendered = []
    bar = progress_bar(
        total=sum(roll.shape[1] for roll in rolls),
        desc=f"render {spec.name}",
        unit="frame",
        disable=not progress,
    )
    try:
        for roll in rolls:
            audio = _render_chunked(
                model,
                torch.from_numpy(np.asarray(roll, dtype=np.float32)).to(device),
                chunk_frames=chunk_frames,
                context_frames=context_frames,
                generator=generator,
                temperature=temperature,
            )
            rendered.append(audio.float().cpu().numpy())
            bar.update(roll.shape[1])
    finally:
        bar.close()
    return rendered
