"""The WaveNet's generation engines: sample after sample, fast.

Generation keeps, for every causal convolution of :class:`WaveNetVocoder`, a queue of
its past inputs (the "fast WaveNet" of Paine et al. 2016), so that each new sample costs
one step of every layer, not a pass over the whole receptive field as in
:meth:`WaveNetVocoder.generate_naive`, the reference the engines are tested against.
Three engines run that queue method and draw the same samples from the same random
numbers: ``queue`` (the model's own modules, one call each), ``fused`` (the weights
rearranged by :class:`FusedWeights` so that a layer is a few matrix products on
preallocated buffers) and ``numba`` (the fused step's loop compiled by numba). At batch
1 the cost of a torch call, not arithmetic, bounds the first two; the compiled loop has
none, and is the default where numba is installed (a torch-only install falls back to
``fused``).

The engines read the model through :class:`GeneratingWaveNet`, a ``Protocol`` naming
exactly the attributes they use; :class:`WaveNetGeneration`, the mixin the model
inherits, puts them behind ``generate``. The model file imports this one, never the
other way round.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wavegen_core.models.blocks import DilatedConv1d, GatedResidualLayer
from wavegen_core.models.vocoders.wavenet.config import WaveNetConfig
from wavegen_core.progress import progress_bar

# Uniforms are drawn from the generator this many samples at a time, whatever the
# path, so that every path consumes the same random numbers in the same order.
UNIFORM_CHUNK = 4096
# Conditioning frames upsampled at a time during generation (bounded memory).
CONDITIONING_BLOCK_FRAMES = 32
# Samples (times streams) whose per-layer conditioning terms are projected at a time:
# 1,024 x 20 layers x 128 gate channels of float32 is 10 MB, which stays in the cache
# while the samples are drawn (a block of 8,192 samples at once was 10 % slower).
PROJECTED_SAMPLES = 1024
# How generate() steps: "queue" (eager, one module call per layer), "fused" (eager,
# few matrix products on preallocated buffers), "numba" (the fused loop compiled) or
# "auto" (numba where installed, else fused).
GENERATION_METHODS = ("auto", "queue", "fused", "numba")


class GeneratingWaveNet(Protocol):
    """What the generation engines read of a WaveNet, and nothing more."""

    config: WaveNetConfig
    hop_length: int
    # Whether the output is mu-law classes (else a logistic mixture over values).
    mu_law: bool
    # The logistic mixture's floor on log scales.
    log_scale_min: float
    input_conv: DilatedConv1d
    output_hidden: nn.Conv1d
    output_projection: nn.Conv1d

    @property
    def layers(self) -> list[GatedResidualLayer]: ...

    @property
    def silence(self) -> float: ...

    @property
    def draws(self) -> int: ...

    def input_features(self, previous: torch.Tensor) -> torch.Tensor: ...

    def head(self, skips: torch.Tensor) -> torch.Tensor: ...

    def draw(
        self, output: torch.Tensor, uniforms: torch.Tensor, temperature: float
    ) -> torch.Tensor: ...

    def decode(self, drawn: torch.Tensor) -> torch.Tensor: ...

    def check_roll(self, roll: torch.Tensor) -> None: ...

    def conditioning_blocks(
        self, roll: torch.Tensor, block_frames: int, history: int, first_frame: int
    ) -> Iterator[torch.Tensor]: ...


class UniformStream:
    """Uniforms for sample after sample, drawn ``UNIFORM_CHUNK`` samples at a time.

    Every generation path takes its random numbers from one of these, so that with
    the same seeded generator all paths use the same uniforms for the same sample.
    """

    def __init__(
        self, batch: int, draws: int, generator: torch.Generator | None, device: torch.device
    ) -> None:
        self.shape = (batch, draws)
        self.generator = generator
        self.device = device
        self.chunk = torch.empty(0)
        self.position = 0

    def take(self, samples: int) -> torch.Tensor:
        """The uniforms of the next ``samples`` samples, (samples, batch, draws) float64."""
        parts = []
        while samples > 0:
            if self.position == len(self.chunk):
                self.chunk = torch.rand(
                    (UNIFORM_CHUNK, *self.shape),
                    generator=self.generator,
                    dtype=torch.float64,
                    device=self.device,
                )
                self.position = 0
            count = min(samples, len(self.chunk) - self.position)
            parts.append(self.chunk[self.position : self.position + count])
            self.position += count
            samples -= count
        return torch.cat(parts) if len(parts) > 1 else parts[0]


class QueueStepper:
    """Sample-by-sample generation with a queue of past inputs per causal convolution.

    The fast WaveNet (Paine et al. 2016): a convolution of kernel ``k`` and dilation
    ``d`` needs, besides its current input, the inputs ``d, 2 d, ..., (k - 1) d``
    steps back; a ring buffer of the last ``(k - 1) d`` inputs holds them, so one
    sample costs one step of each layer. The queues start at zero, which is what
    the causal padding of the training pass feeds the layers before the first sample.
    Each convolution's step is one matrix product of its taps, side by side, with
    its weight (a 1-sample convolution, without ``conv1d``'s overhead at this size).
    """

    def __init__(self, model: GeneratingWaveNet, batch: int, temperature: float) -> None:
        self.model = model
        self.temperature = temperature
        convs = [model.input_conv] + [layer.conv for layer in model.layers]
        self.convs = [
            # (weight (out, in * kernel), bias, [tap distances, oldest first], queue)
            (
                conv.weight.flatten(1),
                conv.bias,
                [
                    (conv.kernel_size[0] - 1 - m) * conv.dilation[0]
                    for m in range(conv.kernel_size[0] - 1)
                ],
                conv.weight.new_zeros(conv.reach, batch, conv.in_channels),
            )
            for conv in convs
        ]
        self.layers = [
            (
                layer.residual.weight[..., 0],
                layer.residual.bias,
                layer.skip.weight[..., 0],
                layer.skip.bias,
            )
            for layer in model.layers
        ]
        self.t = 0
        self.previous = torch.full((batch,), model.silence, device=model.input_conv.weight.device)
        if model.mu_law:
            self.previous = self.previous.long()

    def project(self, cond: torch.Tensor) -> torch.Tensor:
        """A block of conditioning (batch, channels, n) projected for every layer at
        once: (n, layers, batch, gate_channels)."""
        terms = torch.stack([layer.cond(cond) for layer in self.model.layers])
        return terms.permute(3, 0, 1, 2).contiguous()

    def _conv_step(self, index: int, x: torch.Tensor) -> torch.Tensor:
        weight, bias, distances, past = self.convs[index]
        reach = past.shape[0]
        taps = [past[(self.t - distance) % reach] for distance in distances]
        window = torch.stack([*taps, x], dim=-1)  # (batch, in_channels, kernel), oldest first
        past[self.t % reach] = x
        return F.linear(window.flatten(1), weight, bias)

    def output(self, cond_terms: torch.Tensor) -> torch.Tensor:
        """The output distribution (batch, out) for the current sample, given its
        conditioning terms (layers, batch, gate_channels)."""
        model = self.model
        features = model.input_features(self.previous.unsqueeze(-1))[..., 0]
        x = self._conv_step(0, features)
        skips: torch.Tensor | None = None
        for index, (layer, weights) in enumerate(
            zip(model.layers, self.layers, strict=True), start=1
        ):
            residual_weight, residual_bias, skip_weight, skip_bias = weights
            gated = layer.gate(self._conv_step(index, x) + cond_terms[index - 1])
            skip = F.linear(gated, skip_weight, skip_bias)
            skips = skip if skips is None else skips + skip
            x = x + F.linear(gated, residual_weight, residual_bias)
        assert skips is not None
        return model.head(skips.unsqueeze(-1))[..., 0]

    def run_block(self, cond_terms: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Draw a block's samples, (batch, n) classes or values, from its projected
        conditioning (:meth:`project`) and one row of uniforms per sample."""
        drawn = []
        for step in range(len(uniforms)):
            output = self.output(cond_terms[step])
            self.previous = self.model.draw(output, uniforms[step], self.temperature)
            drawn.append(self.previous)
            self.t += 1
        return torch.stack(drawn, dim=1)


def bias(conv: nn.Conv1d) -> torch.Tensor:
    """A convolution's bias (every convolution of the model has one)."""
    assert conv.bias is not None
    return conv.bias


@dataclass
class FusedWeights:
    """The model's generation weights, rearranged so that each layer's step is a few
    matrix products on contiguous buffers (what :class:`FusedStepper` and the numba
    loop both run).

    Three exact rewrites make the step short:

    * ``tanh(a) = 2 sigmoid(2 a) - 1``: the filter half of every gate's weights and
      biases is doubled, so one ``sigmoid`` covers the whole gate; with
      ``A = [sigmoid(2 a_f) sigmoid(a_g), sigmoid(a_g)]`` the gate output is
      ``[2 I, -I] A``, folded into the residual and skip weights below;
    * the residual biases are folded away: layer ``i`` keeps ``x_i - c_i`` with
      ``c_i`` the sum of the residual biases before it, its convolution bias
      absorbing ``W c_i`` and its queue starting at ``-c_i`` (the zero padding);
    * every layer's conditioning projection and the skip projections of all layers
      are each one matrix: the first applied to a block of conditioning at once, the
      second to the gates of all layers side by side.
    """

    taps: torch.Tensor  # (layers, kernel, residual, gate); tap m acts on distances[:, m] back
    distances: torch.Tensor  # (layers, kernel) int64, steps back of each tap (last: 0)
    ring_sizes: torch.Tensor  # (layers,) int64, reach + 1: the queue holds the present too
    ring_fill: torch.Tensor  # (layers, residual): -c_i, the queues' content before sample 0
    cond_weight: torch.Tensor  # (layers * gate, cond_channels)
    cond_bias: torch.Tensor  # (layers * gate,)
    residual: torch.Tensor  # (layers, gate, residual)
    skip: torch.Tensor  # (layers * gate, skip)
    skip_bias: torch.Tensor  # (skip,)
    hidden: torch.Tensor  # (skip, skip)
    hidden_bias: torch.Tensor  # (skip,)
    out: torch.Tensor  # (skip, outputs)
    out_bias: torch.Tensor  # (outputs,)
    input_taps: torch.Tensor  # (INPUT_KERNEL, input_channels, residual); last tap: now
    input_bias: torch.Tensor  # (residual,)

    @classmethod
    def from_model(cls, model: GeneratingWaveNet) -> FusedWeights:
        layers = model.layers
        gate = model.config.gate_channels
        half = gate // 2
        device = model.input_conv.weight.device
        doubled = torch.ones(gate, device=device)
        doubled[:half] = 2.0
        offset = torch.zeros(model.config.residual_channels, device=device)  # c_i
        taps, fill, cond_weight, cond_bias, residual, skip = [], [], [], [], [], []
        distances: list[list[int]] = []
        sizes: list[int] = []
        with torch.no_grad():
            for layer in layers:
                conv = layer.conv
                kernel, dilation = conv.kernel_size[0], conv.dilation[0]
                weight = conv.weight * doubled[:, None, None]  # (gate, residual, kernel)
                taps.append(weight.permute(2, 1, 0))
                distances.append([(kernel - 1 - m) * dilation for m in range(kernel)])
                sizes.append(conv.reach + 1)
                fill.append(-offset)
                cond_weight.append(layer.cond.weight[..., 0] * doubled[:, None])
                cond_bias.append(bias(conv) * doubled + weight.sum(-1) @ offset)
                residual_weight = layer.residual.weight[..., 0].T  # (half, residual)
                residual.append(torch.cat([2 * residual_weight, -residual_weight]))
                skip_weight = layer.skip.weight[..., 0].T
                skip.append(torch.cat([2 * skip_weight, -skip_weight]))
                offset = offset + bias(layer.residual)
            hidden, out = model.output_hidden, model.output_projection
            fused = cls(
                taps=torch.stack(taps),
                distances=torch.tensor(distances, device=device),
                ring_sizes=torch.tensor(sizes, device=device),
                ring_fill=torch.stack(fill),
                cond_weight=torch.cat(cond_weight),
                cond_bias=torch.cat(cond_bias),
                residual=torch.stack(residual),
                skip=torch.cat(skip),
                skip_bias=torch.stack([bias(layer.skip) for layer in layers]).sum(0),
                hidden=hidden.weight[..., 0].T,
                hidden_bias=bias(hidden),
                out=out.weight[..., 0].T,
                out_bias=bias(out),
                input_taps=model.input_conv.weight.permute(2, 1, 0),
                input_bias=bias(model.input_conv),
            )
        for name, value in vars(fused).items():
            setattr(fused, name, value.detach().float().contiguous())
        fused.distances, fused.ring_sizes = fused.distances.long(), fused.ring_sizes.long()
        return fused


class FusedState:
    """What one generation carries from sample to sample, shared by the fused paths:
    the queues of all layers in one buffer, the previous samples and the input
    convolution's contribution of the sample before them."""

    def __init__(
        self, model: GeneratingWaveNet, fused: FusedWeights, batch: int, temperature: float
    ) -> None:
        self.model = model
        self.fused = fused
        self.temperature = temperature
        self.mu_law = model.mu_law
        sizes = fused.ring_sizes.tolist()
        self.ring_offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
        residual = fused.taps.shape[2]
        rings = [
            fill.expand(size, batch, residual)
            for fill, size in zip(fused.ring_fill, sizes, strict=True)
        ]
        self.rings = torch.cat(rings).contiguous()  # (sum of sizes, batch, residual)
        # The input convolution's older tap applied to the previous sample, plus its
        # bias; before sample 0 that tap sees the zero padding.
        self.carry = fused.input_bias.expand(batch, residual).clone()
        self.previous = torch.full((batch,), model.silence, device=fused.taps.device)
        if self.mu_law:
            self.previous = self.previous.long()
        self.t = 0

    def project(self, cond: torch.Tensor) -> torch.Tensor:
        """A block of conditioning (batch, channels, n) projected for every layer at
        once, biases included: (n, layers, batch, gate)."""
        batch, channels, n = cond.shape
        layers = self.fused.taps.shape[0]
        flat = cond.permute(2, 0, 1).reshape(n * batch, channels)
        terms = torch.addmm(self.fused.cond_bias, flat, self.fused.cond_weight.T)
        return terms.view(n, batch, layers, -1).transpose(1, 2).contiguous()


class FusedStepper(FusedState):
    """The queue method with :class:`FusedWeights`, in preallocated buffers, eager torch.

    Per sample and layer: one ``addmm`` per convolution tap, one ``sigmoid_``, one
    ``mul_`` and one ``addmm`` that writes the next layer's input straight into its
    queue; then three ``addmm`` for the skip sum and the output layers.
    """

    def __init__(
        self, model: GeneratingWaveNet, fused: FusedWeights, batch: int, temperature: float
    ) -> None:
        super().__init__(model, fused, batch, temperature)
        layers, _, _, gate = fused.taps.shape
        device = fused.taps.device
        sizes = fused.ring_sizes.tolist()
        # Views made once: indexing costs as much as a small matrix product at batch 1.
        self.slots = [list(ring.unbind(0)) for ring in self.rings.split(sizes)]
        self.tap_weights = [list(layer_taps.unbind(0)) for layer_taps in fused.taps]
        self.past_distances = fused.distances[:, :-1].tolist()
        self.residual = list(fused.residual.unbind(0))
        self.gates = torch.zeros(batch, layers, gate, device=device)
        self.gate_views = list(self.gates.unbind(1))
        half = gate // 2
        self.gate_halves = [(view[:, :half], view[:, half:]) for view in self.gate_views]
        skip_channels = fused.skip.shape[1]
        self.hidden_in = torch.zeros(batch, skip_channels, device=device)
        self.hidden_out = torch.zeros(batch, skip_channels, device=device)
        self.logits = torch.zeros(batch, fused.out.shape[1], device=device)
        # A one-hot input times a weight is a row of it (mu-law); a value scales its
        # single row (logistic mixture).
        self.input_now, self.input_past = fused.input_taps[1], fused.input_taps[0]

    def _input_step(self, x: torch.Tensor) -> None:
        """Write the input convolution's output for the previous samples into ``x``."""
        if self.mu_law:
            torch.index_select(self.input_now, 0, self.previous, out=x)
            x.add_(self.carry)
            torch.index_select(self.input_past, 0, self.previous, out=self.carry)
            self.carry.add_(self.fused.input_bias)
        else:
            value = self.previous.unsqueeze(-1)
            torch.addcmul(self.carry, value, self.input_now[0], out=x)
            torch.addcmul(self.fused.input_bias, value, self.input_past[0], out=self.carry)

    def run_block(self, cond_terms: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """As :meth:`QueueStepper.run_block`."""
        fused, slots, layers = self.fused, self.slots, len(self.slots)
        drawn = []
        flat_gates = self.gates.view(self.gates.shape[0], -1)
        for step in range(len(uniforms)):
            t = self.t
            step_terms = cond_terms[step].unbind(0)
            x = slots[0][t % len(slots[0])]
            self._input_step(x)
            for i in range(layers):
                queue, taps, gates = slots[i], self.tap_weights[i], self.gate_views[i]
                size = len(queue)
                x = queue[t % size]
                torch.addmm(step_terms[i], x, taps[-1], out=gates)
                for tap, distance in zip(taps[:-1], self.past_distances[i], strict=True):
                    gates.addmm_(queue[(t - distance) % size], tap)
                gates.sigmoid_()
                filter_part, gate_part = self.gate_halves[i]
                filter_part.mul_(gate_part)
                if i + 1 < layers:
                    following = slots[i + 1]
                    torch.addmm(x, gates, self.residual[i], out=following[t % len(following)])
            torch.addmm(fused.skip_bias, flat_gates, fused.skip, out=self.hidden_in).relu_()
            torch.addmm(fused.hidden_bias, self.hidden_in, fused.hidden, out=self.hidden_out)
            self.hidden_out.relu_()
            torch.addmm(fused.out_bias, self.hidden_out, fused.out, out=self.logits)
            self.previous = self.model.draw(self.logits, uniforms[step], self.temperature)
            drawn.append(self.previous)
            self.t += 1
        return torch.stack(drawn, dim=1)


def fused_block_loop(
    mu_law: bool,
    t0: int,
    temperature: float,
    log_scale_min: float,
    previous: np.ndarray,
    carry: np.ndarray,
    rings: np.ndarray,
    ring_offsets: np.ndarray,
    ring_sizes: np.ndarray,
    distances: np.ndarray,
    windows: np.ndarray,
    cond_terms: np.ndarray,
    residual: np.ndarray,
    skip: np.ndarray,
    skip_bias: np.ndarray,
    hidden: np.ndarray,
    hidden_bias: np.ndarray,
    out: np.ndarray,
    out_bias: np.ndarray,
    input_taps: np.ndarray,
    input_bias: np.ndarray,
    uniforms: np.ndarray,
    drawn: np.ndarray,
) -> None:
    """One block of :class:`FusedStepper`'s loop written out element by element, for
    numba to compile (in plain Python it is correct and very slow).

    The matrices are :class:`FusedWeights`' transposed, (out, in), so that every
    output is a dot product over contiguous memory; ``windows`` (layers, gate,
    kernel * residual) puts a layer's taps side by side, to multiply the queue's
    entries copied side by side. ``previous`` (batch,) float64 holds the previous
    classes or values and ``drawn`` (batch, n) float64 receives the block's;
    ``previous``, ``carry`` and ``rings`` are updated in place.

    The gates' ``exp`` is computed as in Cephes' ``expf`` (range reduction to
    ``|r| <= ln(2) / 2``, a degree-6 polynomial, the power of two built in the
    exponent bits; within 2 ulp of ``exp``), in a loop the compiler vectorises;
    a libm call per element cost a third of the step.
    """
    n, batch = uniforms.shape[0], uniforms.shape[1]
    layers, gate, width = windows.shape
    kernel = distances.shape[1]
    channels = width // kernel
    half = gate // 2
    skip_channels, outputs = skip.shape[0], out.shape[0]
    gates = np.empty((batch, layers * gate), dtype=np.float32)
    window = np.empty(width, dtype=np.float32)
    powers = np.empty(gate, dtype=np.int32)
    scales = powers.view(np.float32)
    hidden_in = np.empty(skip_channels, dtype=np.float32)
    hidden_out = np.empty(skip_channels, dtype=np.float32)
    logits = np.empty(outputs, dtype=np.float32)
    one = np.float32(1.0)
    for step in range(n):
        t = t0 + step
        now = ring_offsets[0] + t % ring_sizes[0]
        for b in range(batch):
            x = rings[now, b]
            if mu_law:
                row = int(previous[b])
                for r in range(channels):
                    x[r] = input_taps[1, row, r] + carry[b, r]
                    carry[b, r] = input_taps[0, row, r] + input_bias[r]
            else:
                value = np.float32(previous[b])
                for r in range(channels):
                    x[r] = value * input_taps[1, 0, r] + carry[b, r]
                    carry[b, r] = value * input_taps[0, 0, r] + input_bias[r]
        for i in range(layers):
            start, size = ring_offsets[i], ring_sizes[i]
            for b in range(batch):
                for m in range(kernel):
                    slot = start + (t - distances[i, m]) % size
                    window[m * channels : (m + 1) * channels] = rings[slot, b]
                a = gates[b, i * gate : (i + 1) * gate]
                for g in range(gate):
                    total = cond_terms[step, i, b, g]
                    weights = windows[i, g]
                    for r in range(width):
                        total += weights[r] * window[r]
                    a[g] = -total
                # a = exp(a) (Cephes expf), then the sigmoid 1 / (1 + exp(-total)).
                for g in range(gate):
                    x_g = min(max(a[g], np.float32(-87.0)), np.float32(88.0))
                    power = np.floor(x_g * np.float32(1.4426950408889634) + np.float32(0.5))
                    r_g = x_g - power * np.float32(0.693359375) + power * np.float32(2.12194440e-4)
                    poly = np.float32(1.9875691500e-4)
                    poly = poly * r_g + np.float32(1.3981999507e-3)
                    poly = poly * r_g + np.float32(8.3334519073e-3)
                    poly = poly * r_g + np.float32(4.1665795894e-2)
                    poly = poly * r_g + np.float32(1.6666665459e-1)
                    poly = poly * r_g + np.float32(5.0000001201e-1)
                    a[g] = poly * r_g * r_g + r_g + one
                    powers[g] = (np.int32(power) + np.int32(127)) << np.int32(23)
                for g in range(gate):
                    a[g] = one / (one + a[g] * scales[g])
                for g in range(half):
                    a[g] *= a[half + g]
                if i + 1 < layers:
                    x = rings[start + t % size, b]
                    following = rings[ring_offsets[i + 1] + t % ring_sizes[i + 1], b]
                    for r in range(channels):
                        weights = residual[i, r]
                        total = x[r]
                        for g in range(gate):
                            total += weights[g] * a[g]
                        following[r] = total
        for b in range(batch):
            z = gates[b]
            for k in range(skip_channels):
                weights = skip[k]
                total = skip_bias[k]
                for j in range(layers * gate):
                    total += weights[j] * z[j]
                hidden_in[k] = max(total, 0.0)
            for k in range(skip_channels):
                weights = hidden[k]
                total = hidden_bias[k]
                for j in range(skip_channels):
                    total += weights[j] * hidden_in[j]
                hidden_out[k] = max(total, 0.0)
            for k in range(outputs):
                weights = out[k]
                total = out_bias[k]
                for j in range(skip_channels):
                    total += weights[j] * hidden_out[j]
                logits[k] = total
            # Inverse CDF of softmax(logits / temperature) over the classes (mu-law) or
            # the mixture weights, as sample_mu_law and sample_logistic_mixture do.
            classes = outputs if mu_law else outputs // 3
            largest = logits[:classes].max()
            total = 0.0
            for k in range(classes):
                logits[k] = math.exp((logits[k] - largest) / temperature)
                total += logits[k]
            chosen, cumulative = classes - 1, 0.0
            for k in range(classes):
                cumulative += logits[k] / total
                if cumulative > uniforms[step, b, 0]:
                    chosen = k
                    break
            if mu_law:
                previous[b] = chosen
            else:
                mean = logits[classes + chosen]
                log_scale = max(logits[2 * classes + chosen], log_scale_min)
                u = min(max(uniforms[step, b, 1], 1e-5), 1.0 - 1e-5)
                value = mean + math.exp(log_scale) * temperature * (math.log(u) - math.log1p(-u))
                previous[b] = min(max(value, -1.0), 1.0)
            drawn[b, step] = previous[b]


@functools.cache
def compiled_block_loop() -> Callable[..., None] | None:
    """:func:`fused_block_loop` compiled by numba, or None where numba is not
    installed. Numba compiles it at its first call (about 10 s) and
    keeps the machine code in its on-disk cache where it can write one."""
    try:
        import numba
    except ImportError:
        return None

    # Reassociation lets the dot products vectorise (no assumptions about inf or NaN);
    # numpy's error model drops the division-by-zero checks that keep loops scalar.
    def jit_loop(cache: bool) -> Callable[..., None]:
        jit = numba.njit(
            cache=cache, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy"
        )
        compiled: Callable[..., None] = jit(fused_block_loop)
        return compiled

    try:
        return jit_loop(cache=True)
    except RuntimeError:  # no writable cache directory: compile in every process
        return jit_loop(cache=False)


class NumbaStepper(FusedState):
    """The queue method with :class:`FusedWeights`, the whole block's loop compiled by
    numba: no per-operation overhead, which is what dominates at batch 1."""

    def __init__(
        self,
        model: GeneratingWaveNet,
        fused: FusedWeights,
        batch: int,
        temperature: float,
        loop: Callable[..., None],
    ) -> None:
        super().__init__(model, fused, batch, temperature)
        self.loop = loop
        layers, kernel, residual, gate = fused.taps.shape
        self.state = self.previous.double().numpy().copy()
        windows = fused.taps.permute(0, 3, 1, 2).reshape(layers, gate, kernel * residual)
        # The loop's arguments after the conditioning terms, (out, in) matrices.
        self.weights = [
            tensor.contiguous().numpy()
            for tensor in (
                fused.residual.transpose(1, 2),
                fused.skip.T,
                fused.skip_bias,
                fused.hidden.T,
                fused.hidden_bias,
                fused.out.T,
                fused.out_bias,
                fused.input_taps,
                fused.input_bias,
            )
        ]
        self.queue_layout = [
            tensor.contiguous().numpy()
            for tensor in (self.ring_offsets, fused.ring_sizes, fused.distances, windows)
        ]

    def run_block(self, cond_terms: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """As :meth:`QueueStepper.run_block`."""
        n, batch = uniforms.shape[:2]
        drawn = np.empty((batch, n))
        self.loop(
            self.mu_law, self.t, float(self.temperature), self.model.log_scale_min, self.state,
            self.carry.numpy(),
            self.rings.numpy(), *self.queue_layout, cond_terms.numpy(), *self.weights,
            uniforms.float().numpy(), drawn,
        )  # fmt: skip
        self.t += n
        result = torch.from_numpy(drawn)
        return result.long() if self.mu_law else result.float()


def make_stepper(
    model: GeneratingWaveNet, batch: int, temperature: float, method: str
) -> QueueStepper | FusedStepper | NumbaStepper:
    """The stepper that runs ``method`` (one of ``GENERATION_METHODS``) for ``batch``
    streams of ``model``."""
    if method not in GENERATION_METHODS:
        raise ValueError(f"method must be one of {GENERATION_METHODS}, got {method!r}")
    if method == "queue":
        return QueueStepper(model, batch, temperature)
    fused = FusedWeights.from_model(model)
    on_cpu = model.input_conv.weight.device.type == "cpu"
    loop = compiled_block_loop() if method in ("auto", "numba") and on_cpu else None
    if loop is not None:
        return NumbaStepper(model, fused, batch, temperature, loop)
    if method == "numba":
        raise RuntimeError("method 'numba' needs numba (installed with wavegen) and the CPU")
    return FusedStepper(model, fused, batch, temperature)


def run_generation(
    model: GeneratingWaveNet,
    stepper: QueueStepper | FusedStepper | NumbaStepper,
    roll: torch.Tensor,
    generator: torch.Generator | None,
    progress: bool,
    block_frames: int,
    history: int = 0,
    first_frame: int = 0,
) -> torch.Tensor:
    batch, samples = roll.shape[0], (roll.shape[-1] - history) * model.hop_length
    uniforms = UniformStream(batch, model.draws, generator, roll.device)
    audio = torch.empty(batch, samples, device=roll.device)
    bar = progress_bar(total=samples, desc="wavenet", unit="sample") if progress else None
    done = 0
    chunk = max(PROJECTED_SAMPLES // batch, 1)
    for cond in model.conditioning_blocks(roll, block_frames, history, first_frame):
        for start in range(0, cond.shape[-1], chunk):
            part = cond[..., start : start + chunk]
            n = part.shape[-1]
            drawn = stepper.run_block(stepper.project(part), uniforms.take(n))
            audio[:, done : done + n] = model.decode(drawn)
            done += n
        if bar is not None:
            bar.update(cond.shape[-1])
    if bar is not None:
        bar.close()
    return audio


class WaveNetGeneration:
    """The mixin that gives a WaveNet its fast ``generate`` (a :class:`GeneratingWaveNet`)."""

    @torch.no_grad()
    def generate(
        self: GeneratingWaveNet,
        roll: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
        progress: bool = False,
        history: int = 0,
        first_frame: int = 0,
        block_frames: int = CONDITIONING_BLOCK_FRAMES,
        method: str = "auto",
    ) -> torch.Tensor:
        """Audio (batch, (frames - history) * hop_length) in [-1, 1] drawn sample by
        sample from ``roll`` (batch, ROLL_CHANNELS, frames), all pieces of the batch at
        once. The first ``history`` frames are read by the conditioning only; the roll's
        first frame is frame ``first_frame`` of its piece (the excitation's phases).

        ``method`` is one of ``GENERATION_METHODS`` (the same samples up to float
        rounding); ``auto`` takes ``numba`` where it is installed and the model is on
        the CPU, else ``fused``. The conditioning is upsampled ``block_frames`` frames
        at a time, so memory stays bounded for any length.
        """
        self.check_roll(roll)
        temperature = WaveNetConfig.default_temperature() if temperature is None else temperature
        stepper = make_stepper(self, roll.shape[0], temperature, method)
        return run_generation(
            self, stepper, roll, generator, progress, block_frames, history, first_frame
        )
