"""One tier of the VQ-VAE hierarchy: a strided encoder, the quantiser, and a decoder.

Tier 1 encodes the waveform (one channel); tier k > 1 encodes the sequence of tier
k - 1's code vectors. The encoder halves the length ``log2(hop)`` times with strided
convolutions (kernel 4, stride 2), each followed by a stack of non-causal residual
convolutions whose dilation grows threefold per layer (Jukebox, Dhariwal et al. 2020,
section 3 and appendix B.1), and projects to the codebook's dimension. The
feed-forward decoder mirrors it with transposed convolutions. A length that the hop
divides comes back exactly: ``encode`` gives ``length / hop`` code steps and the
decoder ``length`` again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.audio.spectral import multi_resolution_stft
from wavegen_core.models.hierarchy.config import QuantiserConfig, TierConfig, TierWaveNetConfig
from wavegen_core.models.hierarchy.quantiser import Quantised, VectorQuantiser
from wavegen_core.models.spec import ModelSpec
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig, WaveNetStackConfig
from wavegen_core.models.vocoders.wavenet.model import WaveNetVocoder


def halvings(hop: int) -> int:
    """How many stride-2 stages make ``hop`` (a power of two, at least 2)."""
    if hop < 2 or hop & (hop - 1):
        raise ValueError(f"a tier's hop must be a power of two >= 2, got {hop}")
    return int(math.log2(hop))


class DilatedResidualStack(nn.Module):
    """``depth`` residual blocks ``x + conv1x1(relu(conv3_dilated(relu(x))))``,
    dilation ``growth ** i``; the length is kept."""

    def __init__(self, channels: int, depth: int, growth: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv1d(channels, channels, 3, dilation=growth**i, padding=growth**i),
                nn.ReLU(),
                nn.Conv1d(channels, channels, 1),
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


class TierEncoder(nn.Module):
    """(batch, in_channels, length) -> (batch, code_dim, length / hop)."""

    def __init__(self, in_channels: int, code_dim: int, hop: int, width: int, depth: int) -> None:
        super().__init__()
        self.hop = hop
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(halvings(hop)):
            layers += [
                nn.Conv1d(channels, width, 4, stride=2, padding=1),
                DilatedResidualStack(width, depth),
            ]
            channels = width
        layers.append(nn.Conv1d(width, code_dim, 3, padding=1))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        """Input steps on either side of a code's own ``hop`` steps that can change it."""
        reach, stride = 0, 1
        for layer in self.net.modules():
            if isinstance(layer, nn.Conv1d):
                reach += (layer.kernel_size[0] - 1) // 2 * layer.dilation[0] * stride + (
                    layer.kernel_size[0] - 1
                ) % 2 * stride
                stride *= layer.stride[0]
        return reach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.hop:
            raise ValueError(f"length {x.shape[-1]} is not a multiple of the hop {self.hop}")
        return self.net(x)


class FeedforwardDecoder(nn.Module):
    """(batch, code_dim, steps) -> (batch, out_channels, steps * hop), in one pass."""

    def __init__(self, code_dim: int, out_channels: int, hop: int, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(code_dim, width, 3, padding=1)]
        for _ in range(halvings(hop)):
            layers += [
                DilatedResidualStack(width, depth),
                nn.ConvTranspose1d(width, width, 4, stride=2, padding=1),
            ]
        layers += [nn.ReLU(), nn.Conv1d(width, out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes)


# --------------------------------------------------------------------------- decoders


class CodeWaveNet(WaveNetVocoder):
    """The WaveNet over the codes of the tier below: p(codes_k-1 | codes_k).

    The vocoder's WaveNet with its categorical output over the K codes of tier k - 1
    instead of mu-law classes: targets and draws are code indices themselves, and code
    0 stands before the first code. Everything else, fast generation included, is the
    vocoder's.
    """

    @property
    def silence(self) -> float:
        return 0.0

    def targets(self, audio: torch.Tensor) -> torch.Tensor:
        return audio.long()

    def decode(self, drawn: torch.Tensor) -> torch.Tensor:
        return drawn


def tier_wavenet(
    config: TierWaveNetConfig, hop: int, code_dim: int, classes: int | None, sample_rate: int
) -> WaveNetVocoder:
    """The autoregressive decoder of a tier: over mu-law audio (``classes`` None, tier 1)
    or over ``classes`` codes, conditioned on code vectors of ``code_dim`` every ``hop``."""
    wavenet = WaveNetConfig(
        **config.model_dump(include=set(WaveNetStackConfig.model_fields)),
        output="mu_law",
        quantization_channels=256 if classes is None else classes,
    )
    # Conditioned on codes, not on a roll: there are no notes to excite.
    conditioning = ConditioningConfig(
        hop_length=hop,
        channels=config.cond_channels,
        layers=config.cond_layers,
        kernel_size=3,
        excitation="none",
    )
    model_class = WaveNetVocoder if classes is None else CodeWaveNet
    return model_class(wavenet, conditioning, sample_rate, cond_in_channels=code_dim)


# --------------------------------------------------------------------------- a tier


@dataclass(frozen=True)
class Below:
    """The level a tier encodes: audio (``classes`` None) or the codes of the tier under
    it, whose vectors (its ``codebook``, (classes, dim)) are the encoder's input."""

    codebook: torch.Tensor | None = None

    @property
    def classes(self) -> int | None:
        return None if self.codebook is None else int(self.codebook.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.codebook is None else int(self.codebook.shape[1])


class VQVAETier(nn.Module):
    """Encoder, quantiser and decoder of one tier.

    Input ``x`` (batch, length) is audio in [-1, 1] for tier 1, code indices of the tier
    below for tier k > 1 (the encoder reads their vectors from the tier below's
    codebook, a fixed buffer here). ``encode`` gives (batch, length / hop) codes;
    ``decode`` maps codes back to the level below; ``loss`` is one training step's
    objective.
    """

    def __init__(
        self,
        tier: int,
        config: TierConfig,
        quantiser: QuantiserConfig,
        below: Below,
        sample_rate: int,
    ) -> None:
        super().__init__()
        self.tier = tier
        self.config = config
        self.hop = config.hop
        self.sample_rate = sample_rate
        self.classes_below = below.classes
        self.register_buffer(
            "codebook_below",
            torch.zeros(0, 1) if below.codebook is None else below.codebook.float().clone(),
        )
        self.encoder = TierEncoder(
            below.channels, config.code_dim, config.hop, config.width, config.depth
        )
        self.quantiser = VectorQuantiser(
            config.codebook_size,
            config.code_dim,
            commitment=quantiser.commitment,
            decay=quantiser.decay,
            restart_threshold=quantiser.restart_threshold,
            kmeans_init=quantiser.kmeans_init,
            kmeans_iterations=quantiser.kmeans_iterations,
        )
        self.decoder: nn.Module
        if config.decoder == "wavenet":
            self.decoder = tier_wavenet(
                config.wavenet, config.hop, config.code_dim, below.classes, sample_rate
            )
        else:
            out_channels = 1 if below.classes is None else below.classes
            self.decoder = FeedforwardDecoder(
                config.code_dim, out_channels, config.hop, config.width, config.depth
            )

    codebook_below: torch.Tensor

    @property
    def on_audio(self) -> bool:
        return self.classes_below is None

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, length) -> the encoder's input (batch, channels, length)."""
        if x.dim() != 2:
            raise ValueError(f"expected (batch, length), got {tuple(x.shape)}")
        if self.on_audio:
            return x.unsqueeze(1).to(self.codebook_below.dtype)
        return self.codebook_below[x.long()].transpose(1, 2)

    def quantise(self, x: torch.Tensor) -> Quantised:
        return self.quantiser(self.encoder(self.inputs(x)))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (batch, length / hop) of ``x`` (batch, length), the codebook unchanged."""
        was_training = self.training
        self.eval()
        try:
            return self.quantise(x).codes
        finally:
            self.train(was_training)

    def vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (batch, steps) -> their vectors (batch, code_dim, steps)."""
        return self.quantiser.lookup(codes)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruction (the decoder's objective) plus the commitment loss, and the
        terms, codebook usage and perplexity of the batch for logging."""
        quantised = self.quantise(x)
        if isinstance(self.decoder, WaveNetVocoder):
            reconstruction, _ = self.decoder.loss(x, quantised.quantised)
            terms = {"nll": reconstruction.detach()}
        elif self.on_audio:
            estimate = self.decoder(quantised.quantised).squeeze(1)
            mse = F.mse_loss(estimate, x)
            spectral = multi_resolution_stft(estimate, x)["total"]
            reconstruction = mse + self.config.spectral_weight * spectral
            terms = {"mse": mse.detach(), "spectral": spectral.detach()}
        else:
            logits = self.decoder(quantised.quantised)
            reconstruction = F.cross_entropy(logits, x.long())
            terms = {"nll": reconstruction.detach()}
        loss = reconstruction + quantised.commitment_loss
        return loss, {
            **terms,
            "commitment": quantised.commitment_loss.detach(),
            "usage": quantised.usage,
            "perplexity": quantised.perplexity,
        }

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        progress: bool = False,
    ) -> torch.Tensor:
        """Codes (batch, steps) -> the level below (batch, steps * hop): audio for tier 1,
        codes of tier k - 1 above it. The WaveNet draws sample by sample; the
        feed-forward decoder gives its output (audio) or its most likely codes."""
        vectors = self.vectors(codes)
        if isinstance(self.decoder, WaveNetVocoder):
            drawn = self.decoder.generate(
                vectors, generator=generator, temperature=temperature, progress=progress
            )
            return drawn if self.on_audio else drawn.round().long()
        output = self.decoder(vectors)
        return output.squeeze(1).clamp(-1.0, 1.0) if self.on_audio else output.argmax(dim=1)


# --------------------------------------------------------------------------- whole pieces

# Codes encoded per chunk when a whole piece is encoded (bounded memory for any length).
ENCODE_CHUNK_CODES = 4096


@torch.no_grad()
def encode_piece(
    tier: VQVAETier, values: np.ndarray, chunk_codes: int = ENCODE_CHUNK_CODES
) -> np.ndarray:
    """The codes of a whole piece (audio or codes of the tier below), ``ceil(len / hop)``
    of them: the end is padded with zeros, and long pieces go through the encoder in
    chunks with enough context on either side that the codes equal one pass's."""
    hop = tier.hop
    device = tier.codebook_below.device
    steps = -(-len(values) // hop)
    padded = np.zeros(steps * hop, dtype=values.dtype)
    padded[: len(values)] = values
    context = -(-tier.encoder.receptive_field // hop) + 1
    codes = np.empty(steps, dtype=np.int64)
    for first in range(0, steps, chunk_codes):
        last = min(first + chunk_codes, steps)
        start, stop = max(first - context, 0), min(last + context, steps)
        window = torch.from_numpy(padded[start * hop : stop * hop]).to(device)[None]
        chunk = tier.encode(window)[0, first - start : last - start]
        codes[first:last] = chunk.cpu().numpy()
    return codes


# --------------------------------------------------------------------------- spec


class TierSpec(ModelSpec[VQVAETier]):
    """A tier's checkpoint records the tier's number and config, the quantiser's, the
    shape of the codebook below and a digest of its input: a checkpoint trained on
    other input is not resumed from."""

    name = "vqvae_tier"

    def checkpoint_config(
        self,
        number: int,
        tier: TierConfig,
        quantiser: QuantiserConfig,
        below: Below,
        *,
        sample_rate: int,
        seed: int,
        input_digest: str,
    ) -> dict[str, Any]:
        return {
            "tier": number,
            "model": tier.model_dump(mode="json", exclude={"train"}),
            "quantiser": quantiser.model_dump(mode="json"),
            "below": None if below.codebook is None else list(below.codebook.shape),
            "sample_rate": sample_rate,
            "seed": seed,
            "input_digest": input_digest,
        }

    def build(self, saved: Mapping[str, Any], below: Below | None = None) -> VQVAETier:
        """The tier, encoding ``below`` (the codebook under it; zeros of the recorded
        shape when None, as loading fills them from the checkpoint)."""
        if below is None:
            shape = saved["below"]
            below = Below(None if shape is None else torch.zeros(*shape))
        return VQVAETier(
            int(saved["tier"]),
            TierConfig.model_validate(saved["model"]),
            QuantiserConfig.model_validate(saved["quantiser"]),
            below,
            int(saved["sample_rate"]),
        )


SPEC = TierSpec()
