"""Signal generators driven by a piano roll: what the DDSP piano and the excitation share.

Both turn the roll's keys into sound at the sample rate, chunk by chunk, with every
chunk equal to that part of one pass over the whole piece:

* **Key state** (:func:`key_state`): per key and frame, the note's velocity, the time
  since its onset and since its release, whether it is held, whether the sustain pedal
  is down, and whether it still rings. Computed for a whole roll at frame rate, so a
  note begun before a chunk or a training excerpt has its true age.
* **Oscillators** (:func:`oscillator_bank`): sums of sinusoids whose amplitudes ramp
  linearly across each frame. Phases are those of the absolute sample index.
* **Noise** (:func:`hashed_noise`): white noise that is a function of the sample index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from wavegen_core.data.pairs import KEY_CHANNELS, PEDAL_CHANNEL, ROLL_FEATURES
from wavegen_core.midi.rolls import KEY_COUNT

# Features of a key's state (see key_state), and where the pedal is among them.
STATE_FEATURES = 6
STATE_FEATURE_PEDAL = 4


def _frames_since(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., T) booleans -> frames since the latest event at or before each frame, and
    whether there was one (frames where there was none count from a frame -T)."""
    frames = events.shape[-1]
    index = torch.arange(frames, device=events.device).expand_as(events)
    last = torch.where(events, index, torch.full_like(index, -frames)).cummax(dim=-1).values
    return (index - last).to(torch.float32), last >= 0


@dataclass
class KeyState:
    """Per key and frame, the state of every key of a roll, gated by ``ringing``:

    ``features`` (batch, KEY_COUNT, frames, STATE_FEATURES) holds the note's velocity,
    ``sqrt(time since onset / onset_seconds)``, ``time since release /
    release_seconds`` (both capped at 1), whether the key is held, whether the sustain
    pedal is down, and 1; zero where the key does not ring. ``ringing`` (batch,
    KEY_COUNT, frames) is 1 while the key is held or released less than
    ``release_seconds`` ago.
    """

    features: torch.Tensor
    ringing: torch.Tensor
    onset_seconds: float

    @property
    def velocity(self) -> torch.Tensor:
        return self.features[..., 0]

    @property
    def since_onset(self) -> torch.Tensor:
        """Seconds since the note's onset, capped at ``onset_seconds`` (0 where silent)."""
        return self.features[..., 1].square() * self.onset_seconds

    @property
    def released(self) -> torch.Tensor:
        """Fraction of ``release_seconds`` since the key was let go (0 while held)."""
        return self.features[..., 2]


def key_state(
    roll: torch.Tensor, frames_per_second: float, onset_seconds: float, release_seconds: float
) -> KeyState:
    """The state of every key of a roll (batch, ROLL_CHANNELS, frames); see :class:`KeyState`.

    Velocity is the note's (held through its release). A note already sounding at the
    roll's first frame starts there.
    """
    batch, _, frames = roll.shape
    keys = roll[:, :KEY_CHANNELS].reshape(batch, len(ROLL_FEATURES), KEY_COUNT, frames)
    onset, sounding, velocity = keys.unbind(1)
    pedal = roll[:, PEDAL_CHANNEL, None, :].expand(batch, KEY_COUNT, frames)
    held = sounding > 0.5
    before = F.pad(held, (1, 0))[..., :-1]
    started = (onset > 0.5) | (held & ~before)
    onset_frames, has_started = _frames_since(started)
    release_frames, _ = _frames_since(~held & before)
    # Released since the latest onset (a release before it belongs to an earlier note).
    decaying = has_started & ~held & (release_frames < onset_frames)
    since_release = torch.where(decaying, release_frames / frames_per_second, 0.0)
    ringing = has_started & (held | (decaying & (since_release < release_seconds)))
    since_onset = onset_frames / frames_per_second
    # The velocity of the latest onset, carried through the note's release.
    index = torch.arange(frames, device=roll.device).expand_as(started)
    last_onset = torch.where(started, index, torch.zeros_like(index)).cummax(dim=-1).values
    note_velocity = velocity.gather(-1, last_onset)
    features = torch.stack(
        [
            note_velocity,
            (since_onset.clamp(max=onset_seconds) / onset_seconds).sqrt(),
            since_release.clamp(max=release_seconds) / release_seconds,
            held.float(),
            pedal,
            torch.ones_like(note_velocity),
        ],
        dim=-1,
    )
    ringing_f = ringing.float()
    return KeyState(features * ringing_f.unsqueeze(-1), ringing_f, onset_seconds)


def frame_columns(first_frame: int, frames: int, total: int, device: torch.device) -> torch.Tensor:
    """Frames ``first_frame .. first_frame + frames`` (one more than rendered, the value
    the last frame ramps to), the ones past the roll's end held at its last frame."""
    columns = torch.arange(first_frame, first_frame + frames + 1, device=device)
    return columns.clamp(max=total - 1)


def ramps(values: torch.Tensor, ringing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame (frames + 1 given) the value at its start and the one it ramps to: a
    frame where the key does not ring stays silent, so a note starts at its onset
    frame's first sample, not a frame early, and fades out over its last frame."""
    gate = ringing[..., :-1]
    return values[..., :-1] * gate, values[..., 1:] * gate


def interpolated_sum(now: torch.Tensor, then: torch.Tensor, signals: torch.Tensor) -> torch.Tensor:
    """sum_j v_j(n) s_j(n) per sample, where v_j goes linearly from ``now`` (batch, J,
    frames) at a frame's first sample to ``then`` (the next frame's value, the same
    shape) at the next frame's, and ``signals`` is (J, frames * hop); by matrix
    products over j, without the (batch, J, samples) product."""
    frames = now.shape[-1]
    hop = signals.shape[-1] // frames
    shaped = signals.reshape(signals.shape[0], frames, hop)
    weight = torch.arange(hop, device=signals.device, dtype=signals.dtype) / hop
    at_start = torch.einsum("bjf,jfp->bfp", now, shaped)
    at_end = torch.einsum("bjf,jfp->bfp", then, shaped)
    return (at_start * (1 - weight) + at_end * weight).reshape(now.shape[0], -1)


def oscillator_bank(
    now: torch.Tensor,
    then: torch.Tensor,
    frequencies: torch.Tensor,
    first_sample: int,
    hop: int,
    sample_rate: int,
) -> torch.Tensor:
    """Sums of sinusoids for samples ``n = first_sample ..`` of whole frames of ``hop``.

    ``frequencies`` (K, J) in Hz, float64, are K groups of J oscillators; ``now`` and
    ``then`` (batch, J, frames) are the amplitudes of the J oscillators of every group
    at each frame's first sample and at the next frame's (a linear ramp between).
    Returns (batch, K, frames * hop): group k is ``sum_j a_j(n) sin(2 pi f_kj n /
    sample_rate)``.

    No sine is evaluated per sample: within a frame, oscillator j is the imaginary part
    of ``exp(i phi_jf) exp(i w_j p)`` (phase at the frame's start, then the rotation
    over its ``p``-th sample), so the sum over j is a complex matrix product, (frames x
    J) by (J x hop). The phases at frame starts are taken modulo one cycle in float64,
    so a sample far into a piece is as exact as an early one.
    """
    batch, _, frames = now.shape
    device = now.device
    # complex64 for float32 amplitudes, complex128 for float64.
    complex_dtype = torch.promote_types(now.dtype, torch.complex64)
    starts = first_sample + hop * torch.arange(frames, dtype=torch.float64, device=device)
    cycles = torch.frac(frequencies[..., None] * (starts / sample_rate))
    at_frame = torch.polar(torch.ones_like(cycles), 2 * math.pi * cycles).to(complex_dtype)
    offsets = torch.arange(hop, dtype=torch.float64, device=device) / sample_rate
    rotation = 2 * math.pi * frequencies[..., None] * offsets
    within = torch.polar(torch.ones_like(rotation), rotation).to(complex_dtype)
    weight = torch.arange(hop, device=device, dtype=now.dtype) / hop
    at_start = torch.einsum("bkjf,kjp->bkfp", now[:, None] * at_frame, within).imag
    at_end = torch.einsum("bkjf,kjp->bkfp", then[:, None] * at_frame, within).imag
    return (at_start * (1 - weight) + at_end * weight).reshape(batch, frequencies.shape[0], -1)


def hashed_noise(first: int, count: int, device: torch.device) -> torch.Tensor:
    """White noise in [-1, 1) for samples ``first .. first + count - 1``: a function of
    the sample index alone (an integer hash), so that chunks agree with the whole."""
    index = torch.arange(first, first + count, dtype=torch.int64, device=device)
    x = index * 0x2545F4914F6CDD1D + 0x1D8E4E27C47D124F
    x = x ^ (x >> 31)
    x = x * 0x5851F42D4C957F2D
    x = x ^ (x >> 29)
    # 24 bits from the middle: torch's right shift keeps the sign, so the xor-shifts
    # above leave the top bit always clear.
    bits = (x >> 16) & 0xFFFFFF
    return bits.to(torch.float32) / float(1 << 23) - 1.0
