"""MIDI conditioning for the vocoders: a piano roll, encoded and brought to the sample rate.

The roll itself is data (:func:`wavegen_core.data.pairs.conditioning_roll`); this module
holds the network that encodes it.

Every vocoder family (``wavenet``, ``flow``, ``gan``) is conditioned the same way
(Hawthorne et al. 2019 condition their WaveNet on the piano roll of the MIDI). The
roll has one frame per ``hop_length`` samples: frame ``i`` stands for samples
``i * hop_length`` to ``(i + 1) * hop_length``, so ``n`` frames condition exactly
``n * hop_length`` samples. Per key it holds three channels:

* ``onset``: 1 in the frame where a note starts, so the attack is placed to the frame;
* ``sounding``: 1 while the note lasts, the sustain pedal included;
* ``velocity``: the note's velocity / 127 while it sounds, so the decay knows its level.

:class:`ConditioningNetwork` encodes the roll with a few centred convolutions over
frames and upsamples the features to the sample rate, with learnt transposed
convolutions or by repeating each frame and smoothing with a convolution. With
``excitation: harmonic`` it also renders the MIDI's harmonic excitation
(:mod:`wavegen_core.models.vocoders.excitation`) and adds it, projected, to those features.
The excitation reads the notes' age from frames before the audio: a roll may then
begin ``history`` frames before the audio it conditions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig
from wavegen_core.data.pairs import ROLL_CHANNELS
from wavegen_core.models.vocoders.config import (
    MEL_FRAME_CENTRE,
    MEL_FRAME_SCALE,
    ConditioningConfig,
    MelFramesConfig,
)
from wavegen_core.models.vocoders.excitation import HarmonicExcitation, excitation_or_none


def upsample_factors(hop_length: int, largest: int = 16) -> list[int]:
    """``hop_length`` as a product of few factors, each at most ``largest`` where the
    primes allow (256 -> [16, 16], 160 -> [16, 10], 250 -> [10, 5, 5])."""
    primes, rest, prime = [], hop_length, 2
    while rest > 1:
        while rest % prime == 0:
            primes.append(prime)
            rest //= prime
        prime += 1
    factors: list[int] = []
    for prime in sorted(primes, reverse=True):
        for index, factor in enumerate(factors):
            if factor * prime <= largest:
                factors[index] *= prime
                break
        else:
            factors.append(prime)
    return sorted(factors, reverse=True)


class MelFrames(nn.Module):
    """Audio (batch, frames * hop_length) -> log-mel frames (batch, bins, frames), one
    per hop, frame ``i`` centred on sample ``i * hop_length`` (:class:`MelFramesConfig`),
    centred and scaled to the roll's range. The same module makes the frames a model is
    trained on (from the true audio) and those it is given at synthesis (from another
    family's render), so the two cannot drift apart."""

    def __init__(self, config: MelFramesConfig, sample_rate: int, hop_length: int) -> None:
        super().__init__()
        self.config = config
        self.hop_length = hop_length
        self.bins = config.bins
        self.spectrogram = LogMelSpectrogram(
            MelConfig(
                sample_rate=sample_rate,
                n_fft=config.n_fft,
                hop_length=hop_length,
                n_mels=config.bins,
                fmin=config.fmin,
                fmax=min(config.fmax, sample_rate / 2),
            ),
            magnitude=True,
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.shape[-1] // self.hop_length
        log_mel = self.spectrogram(audio.float())[:, :frames].transpose(1, 2)
        return (log_mel - MEL_FRAME_CENTRE) / MEL_FRAME_SCALE

    @property
    def floor(self) -> float:
        """The frame value of silence (where no audio is: the history before an excerpt)."""
        return (math.log(self.spectrogram.config.log_eps) - MEL_FRAME_CENTRE) / MEL_FRAME_SCALE

    def attach(self, roll: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``roll`` (batch, channels, frames) with the mel frames of ``audio``, which ends
        with the roll, appended as channels; the roll's frames before the audio get the
        floor."""
        mel = self(audio).to(roll.dtype)
        history = roll.shape[-1] - mel.shape[-1]
        if history < 0:
            raise ValueError(
                f"audio of {audio.shape[-1]} samples is longer than the roll's "
                f"{roll.shape[-1]} frames of {self.hop_length}"
            )
        mel = F.pad(mel, (history, 0), value=self.floor)
        return torch.cat([roll, mel], dim=1)

    @torch.no_grad()
    def attach_to_piece(self, roll: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """One piece's roll (channels, frames) with the mel of ``audio`` (cut or
        zero-padded to the roll's frames x hop samples) appended: the frames a
        mel-conditioned model renders the piece from."""
        samples = roll.shape[1] * self.hop_length
        padded = np.zeros(samples, dtype=np.float32)
        padded[: min(samples, len(audio))] = audio[:samples]
        device = self.spectrogram.window.device
        joined = self.attach(
            torch.from_numpy(np.asarray(roll, dtype=np.float32)[None]).to(device),
            torch.from_numpy(padded[None]).to(device),
        )
        return joined[0].cpu().numpy()


def check_mel_source(
    source_rate: int, source_hop: int, rate: int, hop: int, source: str, family: str
) -> None:
    """ValueError unless the family that draws the mels (``source``) renders at the
    sample rate and hop that the mel-conditioned ``family`` was trained at."""
    if (source_rate, source_hop) != (rate, hop):
        raise ValueError(
            f"the mel source {source} renders at {source_rate} Hz with a hop of "
            f"{source_hop} samples, but {family} was trained at {rate} Hz with a hop of "
            f"{hop}: retrain one of them at the other's vocoder.conditioning.hop_length "
            "and audio.sample_rate"
        )


class ConditioningNetwork(nn.Module):
    """Roll (batch, ROLL_CHANNELS, frames) -> features (batch, channels, frames * hop_length).

    Any frame-rate input works the same way: ``in_channels`` (the roll's by default)
    is what the hierarchical WaveNet sets to its tier's code vectors.

    ``encode`` gives frame-rate features (what the GAN generator upsamples itself);
    ``upsample`` brings them to the sample rate (what the WaveNet and the flow add in
    every layer). ``context_frames`` is how many frames on either side of a frame
    can change its features, which is what chunked inference must carry along.

    With an excitation (``config.excitation``, which needs ``sample_rate``),
    ``excitation`` renders it and ``forward`` adds it through a 1x1 projection; built
    with ``upsampled=False`` (the GAN, which upsamples and takes the excitation itself)
    the network has neither the upsampler nor the projection.

    With ``mel`` (:class:`MelFramesConfig`), the frames it is given hold the roll's
    ``in_channels`` and then ``mel.bins`` log-mel channels (:meth:`MelFrames.attach`);
    the encoder reads the mel alone or both (``mel.inputs``), and the excitation, if
    any, reads the roll.
    """

    def __init__(
        self,
        config: ConditioningConfig,
        in_channels: int = ROLL_CHANNELS,
        sample_rate: int | None = None,
        upsampled: bool = True,
        mel: MelFramesConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.roll_channels = in_channels
        self.mel = mel
        self.mel_frames: MelFrames | None = None
        if mel is not None:
            if sample_rate is None:
                raise ValueError("mel conditioning needs the sample rate")
            self.mel_frames = MelFrames(mel, sample_rate, config.hop_length)
        mel_bins = 0 if mel is None else mel.bins
        self.in_channels = in_channels + mel_bins
        # The first channel the encoder reads: the roll's, or the mel's alone.
        self.encoded_from = in_channels if mel is not None and mel.inputs == "mel" else 0
        self.hop_length = config.hop_length
        self.channels = config.channels
        self.excitation: HarmonicExcitation | None = None
        if config.excitation != "none":
            if sample_rate is None:
                raise ValueError(f"the {config.excitation} excitation needs the sample rate")
            self.excitation = excitation_or_none(config, sample_rate)
        layers: list[nn.Module] = []
        width = self.in_channels - self.encoded_from
        for _ in range(config.layers):
            layers += [
                nn.Conv1d(width, config.channels, config.kernel_size, padding="same"),
                nn.LeakyReLU(0.1),
            ]
            width = config.channels
        self.encoder = nn.Sequential(*layers)
        self.factors = upsample_factors(config.hop_length)
        self.upsampler = nn.ModuleList()
        self.excitation_projection: nn.Conv1d | None = None
        if not upsampled:
            return
        if self.excitation is not None:
            # Zero at first: an excited network starts as the plain one, and learns how
            # much of each harmonic to take in.
            projection = nn.Conv1d(self.excitation.channels, config.channels, 1)
            for parameter in projection.parameters():
                nn.init.zeros_(parameter)
            self.excitation_projection = projection
        if config.upsample == "transposed":
            # One transposed convolution per factor (a single one with a kernel of 2 x
            # hop would hold 2 x hop x channels^2 weights); kernel 2 x factor, so each
            # output blends its input step with a neighbour and boundaries are smooth.
            for factor in self.factors:
                self.upsampler.append(
                    nn.ConvTranspose1d(
                        config.channels,
                        config.channels,
                        kernel_size=2 * factor,
                        stride=factor,
                        padding=factor // 2,
                    )
                )
        else:
            self.upsampler.append(
                nn.Conv1d(
                    config.channels,
                    config.channels,
                    kernel_size=2 * (config.hop_length // 2) + 1,
                    padding="same",
                )
            )

    @property
    def context_frames(self) -> int:
        """Frames on either side of a frame that its upsampled features depend on."""
        return self.config.layers * (self.config.kernel_size // 2) + 1

    @property
    def history_frames(self) -> int:
        """Frames before the audio that the conditioning reads (the excitation's)."""
        return 0 if self.excitation is None else self.excitation.history_frames

    def encode(self, roll: torch.Tensor) -> torch.Tensor:
        return self.encoder(roll[:, self.encoded_from :])

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        if not len(self.upsampler):
            raise RuntimeError("this conditioning network was built without its upsampler")
        if self.config.upsample == "repeat":
            return self.upsampler[0](features.repeat_interleave(self.hop_length, dim=-1))
        for index, (factor, layer) in enumerate(zip(self.factors, self.upsampler, strict=True)):
            if index:
                features = F.leaky_relu(features, 0.1)
            # An odd factor gives one sample more than factor x length: trimmed.
            features = layer(features)[..., : features.shape[-1] * factor]
        return features

    def source(
        self, roll: torch.Tensor, history: int = 0, first_frame: int = 0
    ) -> torch.Tensor | None:
        """The excitation (batch, channels, samples) of frames ``history ..`` of ``roll``
        (whose first frame is frame ``first_frame`` of its piece), or None without one."""
        if self.excitation is None:
            return None
        return self.excitation(roll[:, : self.roll_channels], history, first_frame)

    def _add_source(self, features: torch.Tensor, source: torch.Tensor | None) -> torch.Tensor:
        if source is None or self.excitation_projection is None:
            return features
        return features + self.excitation_projection(source)

    def forward(self, roll: torch.Tensor, history: int = 0, first_frame: int = 0) -> torch.Tensor:
        """Features at the sample rate (batch, channels, samples) for frames ``history ..``
        of ``roll``; the frames before are read by the excitation only."""
        features = self.upsample(self.encode(roll[..., history:]))
        return self._add_source(features, self.source(roll, history, first_frame))

    def blocks(
        self, roll: torch.Tensor, block_frames: int, history: int = 0, first_frame: int = 0
    ) -> Iterator[torch.Tensor]:
        """``self(roll, history, first_frame)`` block by block (batch, channels,
        block_frames * hop): each block is computed from its frames and
        ``context_frames`` frames on either side, then cropped, so memory stays bounded
        for any length."""
        frames = roll.shape[-1]
        context = self.context_frames
        state = (
            None
            if self.excitation is None
            else self.excitation.state(roll[:, : self.roll_channels])
        )
        for first in range(history, frames, block_frames):
            last = min(first + block_frames, frames)
            start, stop = max(first - context, history), min(last + context, frames)
            features = self.upsample(self.encode(roll[..., start:stop]))
            offset = (first - start) * self.hop_length
            block = features[..., offset : offset + (last - first) * self.hop_length]
            if self.excitation is not None and state is not None:
                first_sample = (first_frame + first) * self.hop_length
                block = self._add_source(
                    block, self.excitation.render(state, first, last - first, first_sample)
                )
            yield block


def split_history(audio: torch.Tensor, roll: torch.Tensor, hop_length: int) -> int:
    """Frames of ``roll`` (batch, channels, frames) before ``audio`` (batch, samples): a
    roll ends where its audio does and may begin earlier. ValueError otherwise."""
    history = roll.shape[-1] - audio.shape[-1] // hop_length
    if history < 0 or audio.shape[-1] % hop_length:
        raise ValueError(
            f"audio of {audio.shape[-1]} samples does not end the roll's {roll.shape[-1]} "
            f"frames of {hop_length} samples"
        )
    return history


def crop_or_pad(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """``audio`` (..., time) cut or zero-padded at the end to ``samples`` samples."""
    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    return F.pad(audio, (0, samples - audio.shape[-1]))
