"""Building blocks shared by the vocoder families: dilated convolutions and the gated stack.

The WaveNet (van den Oord et al. 2016, section 2) and the coupling networks of
WaveGlow (Prenger et al. 2019) are the same stack of layers: a dilated convolution,
the conditioning added, a gated activation ``tanh(a) * sigmoid(b)``, then a 1x1
convolution back to the residual path and one to the skip path. The WaveNet's
convolutions are causal (a sample never sees the future); WaveGlow's are centred.
"""

from __future__ import annotations

import torch
from torch import nn


class DilatedConv1d(nn.Conv1d):
    """A dilated 1-D convolution, causal or centred, that keeps the length of its input.

    Causal: output ``t`` sees inputs ``t - (kernel - 1) * dilation`` to ``t``.
    Centred: ``(kernel - 1) * dilation / 2`` on either side (``kernel`` must be odd).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        *,
        causal: bool,
    ) -> None:
        if not causal and kernel_size % 2 == 0:
            raise ValueError(f"a centred convolution needs an odd kernel, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.causal = causal
        self.reach = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.reach // 2
        padding = (self.reach, 0) if self.causal else (half, half)
        return super().forward(nn.functional.pad(x, padding))


class GatedResidualLayer(nn.Module):
    """One layer: dilated conv + conditioning, ``tanh * sigmoid`` gate, residual and skip 1x1s.

    ``gate_channels`` is split in halves for the tanh and sigmoid branches.
    """

    def __init__(
        self,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int,
        cond_channels: int,
        kernel_size: int,
        dilation: int,
        *,
        causal: bool,
    ) -> None:
        super().__init__()
        if gate_channels % 2:
            raise ValueError(f"gate_channels must be even (two halves), got {gate_channels}")
        self.dilation = dilation
        self.conv = DilatedConv1d(
            residual_channels, gate_channels, kernel_size, dilation, causal=causal
        )
        self.cond = nn.Conv1d(cond_channels, gate_channels, 1, bias=False)
        self.residual = nn.Conv1d(gate_channels // 2, residual_channels, 1)
        self.skip = nn.Conv1d(gate_channels // 2, skip_channels, 1)

    def gate(self, pre_activation: torch.Tensor) -> torch.Tensor:
        filter_part, gate_part = pre_activation.chunk(2, dim=1)
        return torch.tanh(filter_part) * torch.sigmoid(gate_part)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, residual, time), (batch, cond, time) -> next residual input, skip output."""
        gated = self.gate(self.conv(x) + self.cond(cond))
        return x + self.residual(gated), self.skip(gated)


class GatedResidualStack(nn.Module):
    """``layers`` gated residual layers with dilation ``2 ** (i % dilation_cycle)``.

    Returns the sum of the skip outputs, (batch, skip_channels, time).
    """

    def __init__(
        self,
        *,
        layers: int,
        dilation_cycle: int,
        kernel_size: int,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int,
        cond_channels: int,
        causal: bool,
    ) -> None:
        super().__init__()
        self.causal = causal
        self.kernel_size = kernel_size
        self.dilations = [2 ** (i % dilation_cycle) for i in range(layers)]
        self.layers = nn.ModuleList(
            GatedResidualLayer(
                residual_channels,
                gate_channels,
                skip_channels,
                cond_channels,
                kernel_size,
                2 ** (i % dilation_cycle),
                causal=causal,
            )
            for i in range(layers)
        )

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample depends on (for the causal stack: itself
        and the ``receptive_field - 1`` before it)."""
        return 1 + sum((self.kernel_size - 1) * dilation for dilation in self.dilations)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        skips: torch.Tensor | None = None
        for layer in self.layers:
            x, skip = layer(x, cond)
            skips = skip if skips is None else skips + skip
        assert skips is not None
        return skips
