"""The vocoder families by name: building one from params, loading one, rendering whole pieces.

Every family (``wavenet``, ``flow``, ``gan``) is an ``nn.Module`` with the same face:
``loss(audio, roll)`` for training and ``generate(roll, generator=, temperature=,
progress=)`` for inference, conditioned by the same :class:`ConditioningNetwork`.
:func:`render_pieces` turns whole pieces of any length into audio in bounded
memory: the autoregressive WaveNet streams its conditioning itself and renders a
batch of pieces at once; the parallel families render chunk by chunk, each chunk
with conditioning context on both sides, cropped and joined.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import torch
from torch import nn

from wavegen_core.config import (
    ConditioningConfig,
    FlowConfig,
    GanConfig,
    VocoderConfig,
    WaveNetConfig,
)
from wavegen_core.models.flow import FlowVocoder
from wavegen_core.models.gan import GanVocoder
from wavegen_core.models.wavenet import WaveNetVocoder
from wavegen_core.progress import progress_bar
from wavegen_core.training.checkpoint import load_checkpoint

FAMILIES: dict[str, tuple[type[nn.Module], type[Any]]] = {
    "wavenet": (WaveNetVocoder, WaveNetConfig),
    "flow": (FlowVocoder, FlowConfig),
    "gan": (GanVocoder, GanConfig),
}
AUTOREGRESSIVE = frozenset({"wavenet"})


class Vocoder(Protocol):
    """What every family offers (the models are also ``nn.Module``s)."""

    hop_length: int

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
    ) -> torch.Tensor: ...


def family_config(config: VocoderConfig, family: str) -> WaveNetConfig | FlowConfig | GanConfig:
    """The params section of ``family`` (``vocoder.<family>``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown vocoder family {family!r}; allowed: {', '.join(FAMILIES)}")
    return cast(WaveNetConfig | FlowConfig | GanConfig, getattr(config, family))


def build_vocoder(
    family: str,
    config: WaveNetConfig | FlowConfig | GanConfig,
    conditioning: ConditioningConfig,
    sample_rate: int,
) -> nn.Module:
    """A freshly initialised model of ``family`` (seed the generators first)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown vocoder family {family!r}; allowed: {', '.join(FAMILIES)}")
    model_class, _ = FAMILIES[family]
    return model_class(config, conditioning, sample_rate)


def checkpoint_config(
    family: str,
    config: WaveNetConfig | FlowConfig | GanConfig,
    conditioning: ConditioningConfig,
    sample_rate: int,
    seed: int,
) -> dict[str, Any]:
    """What a vocoder checkpoint carries to rebuild its model (and to tell runs apart)."""
    return {
        "family": family,
        "model": config.model_dump(mode="json", exclude={"train"}),
        "conditioning": conditioning.model_dump(mode="json"),
        "sample_rate": sample_rate,
        "seed": seed,
    }


class LoadedVocoder(NamedTuple):
    family: str
    model: nn.Module
    sample_rate: int
    hop_length: int


def load_vocoder(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedVocoder:
    """A trained vocoder, its family and sample rate, from its checkpoint alone."""
    checkpoint = load_checkpoint(path, map_location=device)
    saved = checkpoint["config"]
    family = saved["family"]
    _, config_class = FAMILIES[family]
    config = config_class.model_validate(saved["model"])
    model = build_vocoder(
        family,
        config,
        ConditioningConfig.model_validate(saved["conditioning"]),
        saved["sample_rate"],
    )
    model.load_state_dict(checkpoint["state"])
    hop_length = int(saved["conditioning"]["hop_length"])
    return LoadedVocoder(family, model.to(device).eval(), int(saved["sample_rate"]), hop_length)


def _render_chunked(
    model: nn.Module,
    roll: torch.Tensor,
    *,
    chunk_frames: int,
    context_frames: int,
    generator: torch.Generator | None,
    temperature: float | None,
) -> torch.Tensor:
    """One piece's (ROLL_CHANNELS, frames) roll -> (frames * hop,) audio, chunk by chunk."""
    vocoder = cast(Vocoder, model)
    hop = vocoder.hop_length
    frames = roll.shape[-1]
    pieces = []
    for start in range(0, frames, chunk_frames):
        stop = min(start + chunk_frames, frames)
        left, right = max(start - context_frames, 0), min(stop + context_frames, frames)
        audio = vocoder.generate(
            roll[None, :, left:right], generator=generator, temperature=temperature
        )[0]
        pieces.append(audio[(start - left) * hop : (stop - left) * hop])
    return torch.cat(pieces)


@torch.no_grad()
def render_pieces(
    family: str,
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

    The WaveNet renders all pieces as one batch (padded to the longest, then cut);
    the flow and the GAN render each piece in chunks of ``chunk_frames`` frames with
    ``context_frames`` of conditioning on either side, so memory is bounded by the
    chunk. ``temperature`` None is the family's own param.
    """
    if not rolls:
        return []
    device = next(model.parameters()).device
    hop = cast(Vocoder, model).hop_length
    if family in AUTOREGRESSIVE:
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
        desc=f"render {family}",
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
