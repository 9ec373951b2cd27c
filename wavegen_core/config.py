"""The schema of ``params.yaml``.

Every stage loads the file through :func:`load_params`, which validates all of it
before any compute starts: unknown keys are refused (``extra="forbid"``), numbers are
range-checked and choices are enums. A bad value raises :class:`ParamsError`, whose
lines name the key path, the value given and what is allowed; stages turn it into
exit code 2 (the stage contract, rule 2).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PARAMS_FILE = "params.yaml"


class Strict(BaseModel):
    """Base of every params section: unknown keys are an error, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def _check_device(value: str) -> str:
    if not _DEVICE_PATTERN.match(value):
        raise ValueError("must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return value


# --------------------------------------------------------------------------- shared


class AudioConfig(Strict):
    """Audio settings shared by every stage."""

    # 16 kHz is what Onsets and Frames and Wave2Midi2Wave use (Hawthorne et al. 2019).
    sample_rate: int = Field(16000, gt=0, le=192000)


class TrainLoopConfig(Strict):
    """The knobs of the shared training loop; every training stage embeds one."""

    steps: int = Field(gt=0)
    batch_size: int = Field(8, gt=0)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    checkpoint_every: int = Field(100, gt=0)
    log_every: int = Field(10, gt=0)
    eval_every: int = Field(100, gt=0)
    device: str | None = Field(None, description="Overrides the top-level `device` for this stage.")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else _check_device(value)


# --------------------------------------------------------------------------- data


class SplitsConfig(Strict):
    """Fractions of pieces held out; the rest is the train split. MAESTRO keeps its own."""

    validation: Probability = 0.1
    test: Probability = 0.1

    @model_validator(mode="after")
    def _leave_training_data(self) -> SplitsConfig:
        if self.validation + self.test >= 1.0:
            raise ValueError(
                f"validation + test = {self.validation + self.test:g} leaves no train split; "
                "their sum must be below 1"
            )
        return self


class ChoralesConfig(Strict):
    """How the bundled Bach chorales become piano MIDI."""

    # The chorales carry no tempo; at 120 bpm the 350 files last about 2.8 h.
    tempo_bpm: float = Field(100.0, gt=0.0, le=400.0)
    # Seeded humanisation: a MIDI velocity per note from N(mean, std), clipped to 1..127,
    # plus Gaussian onset jitter, so the transcriber sees dynamics and imperfect timing.
    velocity_mean: float = Field(72.0, ge=1.0, le=127.0)
    velocity_std: float = Field(12.0, ge=0.0, le=64.0)
    onset_jitter: Seconds = Field(0.008, le=0.1)
    # General MIDI program the chorales are played on; 0 is the acoustic grand piano.
    program: int = Field(0, ge=0, le=127)


class RenderConfig(Strict):
    """Synthesis of MIDI to audio with FluidSynth."""

    soundfont: str = "/usr/share/sounds/sf2/TimGM6mb.sf2"
    # Kept after the last note-off so releases are not cut.
    release_tail: Seconds = Field(0.25, le=5.0)
    # Peak amplitude after normalisation.
    peak: float = Field(0.9, gt=0.0, le=1.0)


class DataConfig(Strict):
    """The `prepare_data` stage: where the corpus comes from and how it is split."""

    source: Literal["bach_chorales", "maestro", "folder"] = "bach_chorales"
    # The corpus directory for `maestro` and `folder`; a DVC dependency of prepare_data.
    root: str = "data/raw"
    # Bounds the corpus (the first pieces in a stable order); null keeps all of them.
    max_pieces: int | None = Field(None, gt=0)
    # Pieces shorter than this are rejected as unusable.
    min_duration: Seconds = Field(1.0, le=60.0)
    splits: SplitsConfig = SplitsConfig()
    # Worker processes; 0 means one per CPU core.
    num_workers: int = Field(0, ge=0, le=256)
    chorales: ChoralesConfig = ChoralesConfig()
    render: RenderConfig = RenderConfig()

    @model_validator(mode="after")
    def _root_exists(self) -> DataConfig:
        if self.source in ("maestro", "folder") and not Path(self.root).is_dir():
            raise ValueError(
                f"data.source={self.source!r} reads data.root={self.root!r}, "
                "which is not a directory"
            )
        return self


# --------------------------------------------------------------------------- transcription
# Not yet part of `Params`: the transcription stage embeds these sections.


class MelConfig(Strict):
    """A log-mel spectrogram front end, shared by the transcriber and the vocoders.

    Defaults are the settings of Onsets and Frames (Hawthorne et al. 2018, section 3):
    16 kHz audio, a 2048-point FFT, hop 512 (31.25 frames per second) and 229 mel bins
    from 30 Hz to 8 kHz, except ``n_mels``, which the tiny profile shrinks to 64.
    """

    sample_rate: int = Field(16000, gt=0, le=192000)
    n_fft: int = Field(2048, ge=16, le=16384)
    # Frame rate = sample_rate / hop_length.
    hop_length: int = Field(512, gt=0, le=16384)
    n_mels: int = Field(64, ge=4, le=512)
    fmin: float = Field(30.0, ge=0.0)
    fmax: float = Field(8000.0, gt=0.0)
    # Added before the log so that silence maps to a finite floor.
    log_eps: float = Field(1e-5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _bands_fit(self) -> MelConfig:
        if self.fmax > self.sample_rate / 2:
            raise ValueError(
                f"fmax={self.fmax:g} is above the Nyquist frequency {self.sample_rate / 2:g}"
            )
        if self.fmin >= self.fmax:
            raise ValueError(f"fmin={self.fmin:g} must be below fmax={self.fmax:g}")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length={self.hop_length} exceeds n_fft={self.n_fft}")
        return self

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


class TranscriberModelConfig(Strict):
    """The Onsets and Frames piano transcriber (Hawthorne et al. 2018).

    Defaults are the tiny profile. Full size, from the paper (section 3, with the
    acoustic model of Kelz et al. 2016): ``mel.n_mels`` 229, ``conv_channels``
    [32, 32, 64], ``fc_units`` 512, ``lstm_units`` 128 per direction, bidirectional,
    ``conv_dropout`` 0.25, ``fc_dropout`` 0.5, ``onset_weight`` 5.0.
    """

    mel: MelConfig = MelConfig()
    # Output channels of the three 3x3 conv-BN-ReLU layers of the acoustic model;
    # the second and third are each followed by max-pooling over frequency.
    conv_channels: tuple[
        Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]
    ] = (8, 8, 16)
    # Width of the fully connected layer that ends the acoustic model.
    fc_units: int = Field(64, gt=0, le=8192)
    # LSTM units per direction of the onset, offset and frame stacks.
    lstm_units: int = Field(32, gt=0, le=4096)
    bidirectional: bool = True
    conv_dropout: Probability = 0.1
    fc_dropout: Probability = 0.1
    # The weighted frame loss (section 3): frame errors in the first
    # `onset_weight_frames` frames of a note count `onset_weight` times, the k-th frame
    # after them onset_weight / sqrt(k + 1), at least 1, until the note ends.
    # 1.0 turns the weighting off.
    onset_weight: float = Field(5.0, ge=1.0, le=100.0)
    onset_weight_frames: int = Field(2, ge=0, le=100)
    # Onsets and offsets mark one frame per note, about 0.2 % of the onset targets, so
    # a small model trained briefly learns to predict none; counting each positive this
    # many times (BCE pos_weight) gets the detectors going. The paper trains long
    # enough to need none: 1.0 (the full profile) is its loss.
    onset_positive_weight: float = Field(10.0, ge=1.0, le=1000.0)
    # Weight of the velocity loss in the total; the paper adds the losses unweighted.
    velocity_loss_weight: float = Field(1.0, ge=0.0)


class NoteDecodingConfig(Strict):
    """How frame-wise probabilities become notes (Hawthorne et al. 2018, section 3).

    A note starts only where the onset head fires, and lasts while the frame head
    stays on; the paper thresholds both at 0.5.
    """

    onset_threshold: Probability = 0.5
    frame_threshold: Probability = 0.5
    # Notes shorter than this are dropped as spurious; 0 keeps every note.
    min_note_seconds: Seconds = Field(0.0, le=10.0)


class TranscriptionConfig(Strict):
    """The stages `train_transcriber`, `transcribe` and `evaluate_transcriber`."""

    # model: our Onsets and Frames; basic_pitch: Spotify's basic-pitch (optional extra).
    backend: Literal["model", "basic_pitch"] = "model"
    model: TranscriberModelConfig = TranscriberModelConfig()
    decoding: NoteDecodingConfig = NoteDecodingConfig()
    # Training examples are random excerpts of the train split, on the frame grid; the
    # paper trains on excerpts of up to 20 s.
    segment_seconds: float = Field(3.0, gt=0.5, le=60.0)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=400,
        batch_size=4,
        learning_rate=1e-3,
        checkpoint_every=100,
        log_every=10,
        eval_every=200,
    )
    # Inference runs in chunks of this length with this much context on each side, so
    # memory is bounded by the chunk, not the file.
    chunk_seconds: float = Field(20.0, gt=0.5, le=600.0)
    overlap_seconds: float = Field(2.0, ge=0.0, le=60.0)
    # evaluate_transcriber also scores basic-pitch on the test audio when it is
    # installed (the optional extra), side by side with ours.
    compare_basic_pitch: bool = True


# --------------------------------------------------------------------------- symbolic


class EventsConfig(Strict):
    """The performance-event vocabulary of Oore et al. 2018 and the Music Transformer.

    NOTE_ON and NOTE_OFF for each of the 128 MIDI pitches, TIME_SHIFT by 1 to
    ``max_shift_steps`` steps of ``time_step`` seconds, and VELOCITY in
    ``velocity_bins`` bins: 128 + 128 + 100 + 32 = 388 events at the paper's values,
    plus PAD, START and END.
    """

    time_step: float = Field(0.01, gt=0.0, le=1.0)
    max_shift_steps: int = Field(100, gt=0, le=10000)
    velocity_bins: int = Field(32, ge=1, le=127)
    # Extend notes while the sustain pedal (CC 64 >= 64) is down, as the paper does.
    sustain: bool = True


class AugmentationConfig(Strict):
    """Random changes to every training piece (Huang et al. 2019, section 6.2)."""

    # Transpose by a whole number of semitones drawn uniformly from [-N, N].
    transpose_semitones: int = Field(3, ge=0, le=24)
    # Stretch time by a factor drawn uniformly from [1 - s, 1 + s].
    time_stretch: float = Field(0.05, ge=0.0, lt=0.5)


class MusicTransformerModelConfig(Strict):
    """A decoder-only transformer over performance events (Huang et al. 2019).

    Defaults are the tiny profile. The full profile is about the size of the paper's
    Piano-e-Competition model: 6 layers, 8 heads, width 512, feed-forward 1,024,
    relative attention over sequences of 2,048 events, dropout 0.1.
    """

    # relative: relative global attention with the skewing procedure (the paper);
    # absolute: sinusoidal positions added to the input (the vanilla baseline).
    attention: Literal["relative", "absolute"] = "relative"
    d_model: int = Field(64, gt=0, le=8192)
    n_layers: int = Field(2, gt=0, le=64)
    n_heads: int = Field(4, gt=0, le=64)
    d_ff: int = Field(128, gt=0, le=32768)
    dropout: Probability = 0.1
    # Longest sequence the model attends over (training windows and the sampling
    # window); the relative embeddings cover distances 0 .. context - 1.
    context: int = Field(256, ge=8, le=16384)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> MusicTransformerModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        return self


class ComposeConfig(Strict):
    """The stage `compose`: new pieces from the trained Music Transformer."""

    # Pieces sampled from nothing, and continuations of test-split primers.
    unconditional: int = Field(2, ge=0, le=1000)
    continuations: int = Field(2, ge=0, le=1000)
    # Length of each piece (the primer included), and of the primer taken from the
    # start of a test piece.
    seconds: float = Field(20.0, gt=0.0, le=3600.0)
    primer_seconds: float = Field(5.0, gt=0.0, le=600.0)
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    # 0 = no top-k cut; 1.0 = no nucleus (top-p) cut.
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)


class MusicTransformerConfig(Strict):
    """The stages `train_music_transformer` and `compose`."""

    # transcribed: the transcriptions of `transcribe` (the Wave2Midi2Wave recipe);
    # ground_truth: the prepared corpus's own MIDI (train split).
    corpus: Literal["transcribed", "ground_truth"] = "transcribed"
    events: EventsConfig = EventsConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    model: MusicTransformerModelConfig = MusicTransformerModelConfig()
    train: TrainLoopConfig = TrainLoopConfig(
        steps=400,
        batch_size=8,
        learning_rate=1e-3,
        checkpoint_every=100,
        log_every=10,
        eval_every=100,
    )
    # Learning-rate warm-up (linear, in steps) before inverse-square-root decay.
    warmup_steps: int = Field(100, ge=0)
    compose: ComposeConfig = ComposeConfig()


# --------------------------------------------------------------------------- vocoders


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd, so that a centred convolution reaches as far either way")
    return value


# Kernel sizes of centred convolutions (conditioning, flow couplings, GAN residual blocks).
OddKernel = Annotated[int, AfterValidator(_odd)]

VocoderFamily = Literal["wavenet", "flow", "gan"]
VOCODER_FAMILIES: tuple[str, ...] = ("wavenet", "flow", "gan")


class ConditioningConfig(Strict):
    """MIDI conditioning shared by every vocoder family.

    The piano roll of the MIDI (onset, sounding and velocity per key) at one frame
    per ``hop_length`` samples is encoded by ``layers`` convolutions of
    ``kernel_size`` frames into ``channels`` features, then brought to the sample
    rate: learnt transposed convolutions (``transposed``) or repetition followed by a
    convolution (``repeat``).
    """

    # 256 samples = 62.5 frames per second at 16 kHz (16 ms, half the transcriber's frame).
    hop_length: int = Field(256, ge=2, le=4096)
    channels: int = Field(32, gt=0, le=1024)
    layers: int = Field(2, ge=1, le=16)
    kernel_size: OddKernel = Field(3, ge=1, le=31)
    upsample: Literal["transposed", "repeat"] = "transposed"


class WaveNetStackConfig(Strict):
    """The dilated stack of a WaveNet, shared by the vocoder and the tiers' decoders:
    layer ``i`` has dilation ``2 ** (i % dilation_cycle)``."""

    layers: int = Field(10, ge=1, le=128)
    dilation_cycle: int = Field(10, ge=1, le=24)
    kernel_size: int = Field(2, ge=2, le=8)
    residual_channels: int = Field(32, gt=0, le=2048)
    gate_channels: int = Field(64, gt=0, le=4096)
    skip_channels: int = Field(64, gt=0, le=4096)


class WaveNetConfig(WaveNetStackConfig):
    """A MIDI-conditioned WaveNet (van den Oord et al. 2016; Hawthorne et al. 2019).

    Defaults are the tiny profile. The full profile is 30 layers in 3 cycles of 10,
    as the WaveNet vocoder of Tacotron 2 (Shen et al. 2018), whose output is a
    mixture of 10 logistics.
    """

    # mu_law: 8-bit mu-law classes with a softmax (the original WaveNet);
    # logistic_mixture: a discretised mixture of logistics (PixelCNN++, Parallel WaveNet).
    output: Literal["mu_law", "logistic_mixture"] = "mu_law"
    quantization_channels: int = Field(256, ge=2, le=65536)
    mixtures: int = Field(10, ge=1, le=64)
    # Training excerpts, in conditioning frames (frames x hop_length samples).
    segment_frames: int = Field(8, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=1e-3, checkpoint_every=100, eval_every=100
    )


class FlowConfig(Strict):
    """A WaveGlow-style normalising flow (Prenger et al. 2019).

    Defaults are the tiny profile. WaveGlow: 12 flows over groups of 8 samples, 2
    channels output early after every 4 flows, coupling networks of 8 layers with 512
    residual channels, training sigma 1.0 (sampling at 0.6 of it:
    ``vocoder.synthesize.temperature.flow``).
    ``conditioning.hop_length`` must be a multiple of ``groups`` (a frame holds whole
    groups of samples); the model checks it when it is built.
    """

    groups: int = Field(8, ge=2, le=64)
    flows: int = Field(4, ge=1, le=64)
    early_every: int = Field(2, ge=1, le=64)
    early_channels: int = Field(2, ge=0, le=64)
    coupling_layers: int = Field(4, ge=1, le=64)
    coupling_channels: int = Field(32, gt=0, le=2048)
    kernel_size: OddKernel = Field(3, ge=1, le=31)
    # Standard deviation of the Gaussian prior in training.
    sigma: float = Field(1.0, gt=0.0, le=10.0)
    segment_frames: int = Field(32, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=1e-3, checkpoint_every=100, eval_every=100
    )

    @model_validator(mode="after")
    def _early_outputs_fit(self) -> FlowConfig:
        early = (self.flows - 1) // self.early_every * self.early_channels
        if self.early_channels and early >= self.groups:
            raise ValueError(
                f"{(self.flows - 1) // self.early_every} early outputs of "
                f"{self.early_channels} channels leave nothing of groups={self.groups}"
            )
        if self.groups - early < 2:
            raise ValueError("the last flow needs at least 2 channels to couple")
        return self


class GanConfig(Strict):
    """A HiFi-GAN generator with multi-period and multi-scale discriminators (Kong et al. 2020).

    Defaults are the tiny profile. HiFi-GAN V1: initial width 512, upsampling
    [8, 8, 2, 2] with kernels [16, 16, 4, 4], residual kernels [3, 7, 11] with
    dilations [1, 3, 5] each, periods [2, 3, 5, 7, 11], 3 scales; losses weighted
    feature matching 2 and mel 45; AdamW 2e-4, betas (0.8, 0.99).
    The product of ``upsample_rates`` must equal ``conditioning.hop_length``.
    """

    initial_channels: int = Field(64, gt=0, le=4096)
    upsample_rates: list[Annotated[int, Field(ge=1, le=64)]] = [8, 8, 4]
    upsample_kernel_sizes: list[Annotated[int, Field(ge=1, le=128)]] = [16, 16, 8]
    resblock_kernel_sizes: list[Annotated[OddKernel, Field(ge=1, le=63)]] = [3, 7, 11]
    resblock_dilations: list[list[Annotated[int, Field(ge=1, le=64)]]] = [[1, 3, 5]] * 3
    periods: list[Annotated[int, Field(ge=1, le=64)]] = [2, 3, 5, 7, 11]
    scales: int = Field(3, ge=1, le=8)
    # Width unit of both discriminators: 32 gives HiFi-GAN's (multi-period 32 to 1,024,
    # multi-scale 128 to 1,024 channels). The discriminators dominate a training step's
    # cost: at 4, a step of the tiny profile takes about 1 s on 2 CPU cores, at 16 about 10 s.
    discriminator_channels: int = Field(4, gt=0, le=1024)
    feature_matching_weight: float = Field(2.0, ge=0.0)
    mel_weight: float = Field(45.0, ge=0.0)
    # The mel-spectrogram of the mel loss (HiFi-GAN: 1,024-point FFT, hop 256, 80 bands).
    mel_n_fft: int = Field(1024, ge=16, le=16384)
    mel_hop_length: int = Field(256, gt=0, le=16384)
    mel_bins: int = Field(80, ge=4, le=512)
    adam_betas: tuple[Probability, Probability] = (0.8, 0.99)
    segment_frames: int = Field(16, ge=1, le=4096)
    train: TrainLoopConfig = TrainLoopConfig(
        steps=300, batch_size=8, learning_rate=2e-4, checkpoint_every=100, eval_every=100
    )

    @model_validator(mode="after")
    def _lists_match(self) -> GanConfig:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates has {len(self.upsample_rates)} entries and "
                f"upsample_kernel_sizes {len(self.upsample_kernel_sizes)}; one kernel per rate"
            )
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if kernel < rate or (kernel - rate) % 2:
                raise ValueError(
                    f"upsample kernel {kernel} for rate {rate}: the kernel must be at least "
                    "the rate and differ from it by an even number, so that the output is "
                    "exactly rate times longer"
                )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilations):
            raise ValueError("resblock_dilations needs one list of dilations per resblock kernel")
        if self.initial_channels % 2 ** len(self.upsample_rates):
            raise ValueError(
                f"initial_channels={self.initial_channels} halves at each of the "
                f"{len(self.upsample_rates)} upsamplings; make it a multiple of "
                f"{2 ** len(self.upsample_rates)}"
            )
        return self


class SamplingTemperatures(Strict):
    """How far from the model's own distribution each sampling family draws.

    Kept apart from the family sections so that changing one reruns `synthesize`, not
    the training. The GAN is deterministic and has none.
    """

    # 1.0 samples the WaveNet's predicted distribution as it is.
    wavenet: float = Field(1.0, gt=0.0, le=10.0)
    # WaveGlow samples its prior at 0.6 of the training sigma (Prenger et al. 2019).
    flow: float = Field(0.6, ge=0.0, le=10.0)


class SynthesizeConfig(Strict):
    """The stages `synthesize@<family>`: test-split and composed MIDI rendered to audio."""

    temperature: SamplingTemperatures = SamplingTemperatures()

    # Test pieces and composed pieces rendered (0 = none, null = all of them).
    test_pieces: int | None = Field(2, ge=0)
    composed_pieces: int | None = Field(2, ge=0)
    # Each piece is cut to its first max_seconds (null = whole pieces); autoregressive
    # generation on a CPU takes seconds per second of audio.
    max_seconds: float | None = Field(4.0, gt=0.0, le=36000.0)
    # Parallel families render in chunks of this many frames (bounded memory), each
    # with `context_frames` of conditioning on either side.
    chunk_frames: int = Field(512, ge=8, le=1_000_000)
    context_frames: int = Field(16, ge=0, le=4096)


class VocoderConfig(Strict):
    """The stages `train_vocoder@<family>` and `synthesize@<family>`."""

    # Families trained and compared; a family not listed is not trained.
    families: list[VocoderFamily] = ["wavenet", "flow", "gan"]
    conditioning: ConditioningConfig = ConditioningConfig()
    wavenet: WaveNetConfig = WaveNetConfig()
    flow: FlowConfig = FlowConfig()
    gan: GanConfig = GanConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()

    @field_validator("families")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"lists a family twice; allowed: {', '.join(VOCODER_FAMILIES)}")
        return value

    @model_validator(mode="after")
    def _gan_reaches_sample_rate(self) -> VocoderConfig:
        total = 1
        for rate in self.gan.upsample_rates:
            total *= rate
        if total != self.conditioning.hop_length:
            raise ValueError(
                f"gan.upsample_rates {self.gan.upsample_rates} multiply to {total}, but "
                f"conditioning.hop_length is {self.conditioning.hop_length}; they must be equal"
            )
        return self


# --------------------------------------------------------------------------- VQ-VAE hierarchy

# What tier 1 encodes (the prepared corpus's audio), and where encode@k writes tier k's
# codes (the input of tier k + 1).
VQVAE_AUDIO_INPUT = "data/prepared"


def codes_dir(tier: int) -> str:
    """Where `encode@<tier>` writes the tier's codes of the whole corpus."""
    return f"data/codes/{tier}"


def _power_of_two(value: int) -> int:
    if value < 2 or value & (value - 1):
        raise ValueError("must be a power of two (2, 4, 8, ...): each halving is one strided layer")
    return value


class QuantiserConfig(Strict):
    """The vector quantiser every tier uses (one module, :mod:`wavegen_core.models.quantiser`).

    The codebook follows exponential moving averages of the encoder outputs assigned to
    each code (van den Oord et al. 2017, appendix A.1); codes whose average count per
    batch falls below ``restart_threshold`` are moved to a random encoder output of the
    batch (Jukebox, Dhariwal et al. 2020); ``kmeans_init`` starts the codebook from
    k-means on the first training batch.
    """

    commitment: float = Field(0.02, ge=0.0, le=10.0)  # beta; Jukebox: 0.02
    decay: float = Field(0.99, gt=0.0, lt=1.0)
    restart_threshold: float = Field(1.0, ge=0.0)
    kmeans_init: bool = True
    kmeans_iterations: int = Field(10, ge=1, le=1000)


class TierWaveNetConfig(WaveNetStackConfig):
    """The autoregressive decoder of a tier (``decoder: wavenet``): a WaveNet over the
    level below (mu-law audio for tier 1, the codes of tier k - 1 above it), conditioned
    on this tier's code vectors upsampled by ``hop``."""

    # The code vectors' encoder before upsampling (centred convolutions over code steps).
    cond_channels: int = Field(32, gt=0, le=1024)
    cond_layers: int = Field(1, ge=1, le=16)


class TierConfig(Strict):
    """One tier of the hierarchy: a VQ-VAE on the level below, trained on its own.

    Tier 1 encodes the waveform; tier k > 1 encodes the code vectors of tier k - 1. The
    encoder halves the length log2(``hop``) times; each code stands for ``hop``
    steps of the level below.
    """

    # The level below, as DVC tracks it: data/prepared for tier 1, data/codes/<k-1> above.
    input: str
    hop: Annotated[int, AfterValidator(_power_of_two)] = Field(8, le=1024)
    codebook_size: int = Field(64, ge=2, le=65536)
    code_dim: int = Field(32, gt=0, le=4096)
    # Channels of the strided encoder and the feed-forward decoder, and residual blocks
    # (dilations 1, 3, 9, ...) after each halving.
    width: int = Field(32, gt=0, le=4096)
    depth: int = Field(2, ge=0, le=16)
    # feedforward: one pass, trained on a multi-resolution spectral loss (tier 1) or
    # the cross-entropy of the codes below (tier k); wavenet: the autoregressive
    # conditional model of the level below, p(x | codes_1) and p(codes_k-1 | codes_k).
    decoder: Literal["feedforward", "wavenet"] = "feedforward"
    wavenet: TierWaveNetConfig = TierWaveNetConfig()
    # Tier 1, feed-forward: loss = mse + spectral_weight * multi-resolution STFT.
    spectral_weight: float = Field(1.0, ge=0.0, le=1000.0)
    # Training excerpts, in steps of the level below (samples for tier 1); a multiple of hop.
    segment: int = Field(4096, ge=2, le=10_000_000)
    train: TrainLoopConfig = TrainLoopConfig(steps=300, batch_size=8, learning_rate=1e-3)

    @model_validator(mode="after")
    def _segment_fits_hop(self) -> TierConfig:
        if self.segment % self.hop:
            raise ValueError(f"segment={self.segment} is not a multiple of hop={self.hop}")
        return self


class PriorConfig(Strict):
    """The stage `train_prior`: an autoregressive transformer over the top tier's codes,
    built from the Music Transformer's decoder layers (relative attention)."""

    model: MusicTransformerModelConfig = MusicTransformerModelConfig()
    train: TrainLoopConfig = TrainLoopConfig(steps=300, batch_size=8, learning_rate=1e-3)


class HierarchySamplingConfig(Strict):
    """The stage `sample_hierarchy`: new audio from the prior down through the tiers,
    and test audio encoded and decoded back (the reconstruction metrics)."""

    samples: int = Field(2, ge=0, le=1000)
    seconds: float = Field(2.0, gt=0.0, le=3600.0)
    # The prior's softmax temperature; WaveNet decoders draw at decoder_temperature.
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    decoder_temperature: float = Field(1.0, gt=0.0, le=10.0)
    # Test pieces reconstructed through tiers 1..k (null = all), each cut to its first
    # reconstruct_seconds (null = whole).
    reconstruct_pieces: int | None = Field(2, ge=1)
    reconstruct_seconds: float | None = Field(4.0, gt=0.0, le=36000.0)


class VQVAEConfig(Strict):
    """The learnt hierarchy: `train_vqvae@<k>` and `encode@<k>` per tier, `train_prior`,
    `sample_hierarchy`. Tiers are keyed "1", "2", ... (quoted: DVC names the stages
    and params by them)."""

    quantiser: QuantiserConfig = QuantiserConfig()
    tiers: dict[str, TierConfig] = {
        "1": TierConfig(input=VQVAE_AUDIO_INPUT, hop=8),
        "2": TierConfig(input=codes_dir(1), hop=4, segment=512),
    }
    prior: PriorConfig = PriorConfig()
    sample: HierarchySamplingConfig = HierarchySamplingConfig()

    @field_validator("tiers", mode="before")
    @classmethod
    def _quoted_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            bare = [key for key in value if not isinstance(key, str)]
            if bare:
                raise ValueError(
                    f'tier keys must be quoted strings ("1", "2", ...), got {bare}: '
                    "DVC looks the params of train_vqvae@<k> up by that text"
                )
        return value

    @field_validator("tiers")
    @classmethod
    def _tiers_in_order(cls, value: dict[str, TierConfig]) -> dict[str, TierConfig]:
        expected = [str(k) for k in range(1, len(value) + 1)]
        if not value or sorted(value, key=lambda key: (len(key), key)) != expected:
            raise ValueError(
                f'tiers are keyed {list(value)}; they must be "1" to "n", n >= 1, without gaps'
            )
        for key, tier in value.items():
            wanted = VQVAE_AUDIO_INPUT if key == "1" else codes_dir(int(key) - 1)
            if tier.input != wanted:
                raise ValueError(
                    f"tiers.{key}.input is {tier.input!r}; tier {key} encodes "
                    f"{'the audio' if key == '1' else f'tier {int(key) - 1} codes'}, "
                    f"so it must be {wanted!r}"
                )
        return value

    @property
    def top(self) -> int:
        """The number of the highest tier (the one the prior models)."""
        return len(self.tiers)

    def tier(self, number: int) -> TierConfig:
        return self.tiers[str(number)]

    def total_hop(self, number: int) -> int:
        """Samples per code of tier ``number`` (the product of the hops up to it)."""
        total = 1
        for k in range(1, number + 1):
            total *= self.tier(k).hop
        return total


# --------------------------------------------------------------------------- the file


class Params(Strict):
    """The whole of ``params.yaml``."""

    seed: int = Field(1234, ge=0, lt=2**32)
    device: str = "auto"
    audio: AudioConfig = AudioConfig()
    data: DataConfig = DataConfig()
    transcription: TranscriptionConfig = TranscriptionConfig()
    music_transformer: MusicTransformerConfig = MusicTransformerConfig()
    vocoder: VocoderConfig = VocoderConfig()
    vqvae: VQVAEConfig = VQVAEConfig()

    @model_validator(mode="before")
    @classmethod
    def _mel_rate_follows_audio(cls, raw: Any) -> Any:
        """The mel front end reads audio at `audio.sample_rate`; it is not set twice."""
        if not isinstance(raw, dict):
            return raw
        audio = raw.get("audio") or {}
        section = raw.get("transcription") or {}
        model = (section.get("model") or {}) if isinstance(section, dict) else None
        mel = (model.get("mel") or {}) if isinstance(model, dict) else None
        if (
            not (
                isinstance(audio, dict)
                and isinstance(section, dict)
                and isinstance(model, dict)
                and isinstance(mel, dict)
            )
            or "sample_rate" in mel
        ):
            return raw  # malformed sections are reported by the field validation
        rate = audio.get("sample_rate", AudioConfig().sample_rate)
        mel = {**mel, "sample_rate": rate}
        return {**raw, "transcription": {**section, "model": {**model, "mel": mel}}}

    @model_validator(mode="after")
    def _one_sample_rate(self) -> Params:
        mel_rate = self.transcription.model.mel.sample_rate
        if mel_rate != self.audio.sample_rate:
            raise ValueError(
                f"transcription.model.mel.sample_rate={mel_rate} differs from "
                f"audio.sample_rate={self.audio.sample_rate}; leave it out to follow audio"
            )
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return _check_device(value)


# --------------------------------------------------------------------------- loading


class ParamsError(ValueError):
    """``params.yaml`` is unreadable or invalid; ``lines`` says where and why."""

    def __init__(self, path: str | os.PathLike[str], lines: list[str]) -> None:
        self.path = str(path)
        self.lines = lines
        super().__init__(f"invalid params in {self.path}:\n  " + "\n  ".join(lines))


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The params model reached by following ``loc`` from ``model`` (None if not a model)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(error: Any, root: type[BaseModel]) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    key = ".".join(str(part) for part in loc) or "(top level)"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "none"
        return f"{key}: unknown key (value {value!r}); allowed keys here: {allowed}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(value, dict):
        return f"{key}: {message}"
    return f"{key} = {value!r}: {message}"


def validate_params(raw: Any, path: str | os.PathLike[str] = PARAMS_FILE) -> Params:
    """Validate an already-parsed params mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(path, [f"(top level): expected a mapping of sections, got {raw!r}"])
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(path, [_describe(e, Params) for e in err.errors()]) from None


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml`` (or another file of the same shape)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ParamsError(path, [f"cannot read the file: {err.strerror or err}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(path, [f"not valid YAML: {err}"]) from None
    return validate_params(raw, path)
