"""The schema of ``params.yaml``: the config classes of every part, composed into ``Params``.

Each part's config class lives beside its code (the mel front end in ``audio/mel.py``,
a model's beside the model in ``models/``); this module composes them into the params
sections of the stages, and adds what belongs to a stage rather than to a model (its
training loop, its inference settings). Vocoder families are found, not listed: each
is a :class:`~wavegen_core.models.vocoders.config.VocoderSection` and gets its section
``vocoder.<family>`` and, if it samples, ``vocoder.synthesize.temperature.<family>``.

Every stage loads the file through :func:`load_params`, which validates all of it
before any compute starts: unknown keys are refused (``extra="forbid"``), numbers are
range-checked and choices are enums. A bad value raises :class:`ParamsError`, whose
lines name the key path, the value given and what is allowed; stages turn it into
exit code 2 (the stage contract, rule 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from wavegen_core.audio.augment import AugmentConfig
from wavegen_core.audio.mel import MelConfig
from wavegen_core.data.prepare_config import DataConfig, EvaluationConfig, PrepareJob
from wavegen_core.midi.events import EventsConfig
from wavegen_core.midi.rolls import NoteDecodingConfig
from wavegen_core.models.hierarchy.config import QuantiserConfig, TierConfig, TierWaveNetConfig
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.models.transcription.config import TranscriberModelConfig
from wavegen_core.models.vocoders.config import (
    ConditioningConfig,
    MelConditioningConfig,
    VocoderSection,
    vocoder_sections,
)
from wavegen_core.param_types import (
    Strict,
    TrainLoopConfig,
    check_device,
)

PARAMS_FILE = "params.yaml"


# --------------------------------------------------------------------------- shared


class AudioConfig(Strict):
    """Audio settings shared by every stage."""

    # 16 kHz is what Onsets and Frames and Wave2Midi2Wave use (Hawthorne et al. 2019).
    sample_rate: int = Field(16000, gt=0, le=192000)


# --------------------------------------------------------------------------- transcription


class TranscriptionConfig(Strict):
    """The stages `train_transcriber`, `transcribe` and `evaluate_transcriber`."""

    # model: our Onsets and Frames; basic_pitch: Spotify's basic-pitch (optional extra).
    backend: Literal["model", "basic_pitch"] = "model"
    model: TranscriberModelConfig = TranscriberModelConfig()
    decoding: NoteDecodingConfig = NoteDecodingConfig()
    # Training examples are random excerpts of the train split, on the frame grid; the
    # paper trains on excerpts of up to 20 s.
    segment_seconds: float = Field(3.0, gt=0.5, le=60.0)
    # Training-time audio augmentation of each excerpt (gain, EQ, noise, a room).
    augment: AugmentConfig = AugmentConfig()
    train: TrainLoopConfig = TrainLoopConfig(
        steps=400,
        batch_size=4,
        learning_rate=1e-3,
        grad_clip=3.0,
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

    def inference_settings(self) -> dict[str, Any]:
        """How our transcriber is run (``make_transcriber``'s keyword arguments)."""
        return {
            "decoding": self.decoding,
            "chunk_seconds": self.chunk_seconds,
            "overlap_seconds": self.overlap_seconds,
        }


# --------------------------------------------------------------------------- symbolic


class AugmentationConfig(Strict):
    """Random changes to every training piece (Huang et al. 2019, section 6.2)."""

    # Transpose by a whole number of semitones drawn uniformly from [-N, N].
    transpose_semitones: int = Field(3, ge=0, le=24)
    # Stretch time by a factor drawn uniformly from [1 - s, 1 + s].
    time_stretch: float = Field(0.05, ge=0.0, lt=0.5)


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


VOCODER_SECTIONS: dict[str, type[VocoderSection]] = vocoder_sections()
VOCODER_FAMILIES: tuple[str, ...] = tuple(VOCODER_SECTIONS)

if TYPE_CHECKING:
    SamplingTemperatures = Strict
else:
    # One temperature per family that samples (the GAN is deterministic and has none),
    # kept apart from the family sections so that changing one reruns `synthesize`,
    # not the training.
    SamplingTemperatures = create_model(
        "SamplingTemperatures",
        __base__=Strict,
        __doc__="How far from the model's own distribution each sampling family draws.",
        **{
            family: (float, section.sampling_temperature)
            for family, section in VOCODER_SECTIONS.items()
            if section.sampling_temperature is not None
        },
    )


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
    # Also score transcription consistency with basic-pitch (when installed), a judge
    # that learnt neither our corpus nor our soundfont.
    judge: bool = True

    def temperature_of(self, family: str) -> float | None:
        """The sampling temperature of ``family``; None for a deterministic family."""
        value = getattr(self.temperature, family, None)
        return None if value is None else float(value)


class _VocoderSections(Strict):
    """The stages `train_vocoder@<family>` and `synthesize@<family>`; a section per family
    (``wavenet``, ``flow``, ``gan``...) is added by :data:`VocoderConfig`."""

    # Families trained and compared; a family not listed is not trained.
    families: list[str] = list(VOCODER_FAMILIES)
    conditioning: ConditioningConfig = ConditioningConfig()
    # Families also trained on log-mel frames (train_vocoder_mel@, synthesize_mel@).
    mel: MelConditioningConfig = MelConditioningConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()

    @field_validator("families")
    @classmethod
    def _known_once(cls, value: list[str]) -> list[str]:
        unknown = [family for family in value if family not in VOCODER_SECTIONS]
        if unknown:
            raise ValueError(
                f"unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(VOCODER_FAMILIES)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"lists a family twice; allowed: {', '.join(VOCODER_FAMILIES)}")
        return value

    @model_validator(mode="after")
    def _families_fit_conditioning(self) -> _VocoderSections:
        for family in VOCODER_SECTIONS:
            self.section(family).check_conditioning(self.conditioning)
        return self

    @model_validator(mode="after")
    def _mel_families_take_mel(self) -> _VocoderSections:
        mel = self.mel
        takes = [family for family, section in VOCODER_SECTIONS.items() if section.takes_mel]
        refused = [family for family in mel.families if family not in takes]
        if refused:
            raise ValueError(
                f"vocoder.mel.families: {', '.join(map(repr, refused))} cannot be conditioned "
                f"on log-mel frames; allowed: {', '.join(takes)}"
            )
        if len(set(mel.families)) != len(mel.families):
            raise ValueError("vocoder.mel.families lists a family twice")
        if mel.families and mel.source not in self.families:
            raise ValueError(
                f"vocoder.mel.source = {mel.source!r} renders the mels that "
                f"vocoder.mel.families are given at synthesis, so it must be trained: "
                f"one of vocoder.families = {self.families!r}"
            )
        if mel.n_fft < self.conditioning.hop_length:
            raise ValueError(
                f"vocoder.mel.n_fft = {mel.n_fft} is shorter than a frame's hop, "
                f"vocoder.conditioning.hop_length = {self.conditioning.hop_length}: each "
                "frame's spectrum must cover its samples"
            )
        if mel.source in mel.families:
            raise ValueError(
                f"vocoder.mel.source = {mel.source!r} is also in vocoder.mel.families: a "
                "family cannot draw the mels it is conditioned on"
            )
        return self

    def mel_conditioning(self) -> ConditioningConfig:
        """The conditioning of the mel-conditioned models: ``conditioning`` with the
        excitation ``vocoder.mel.excitation`` says."""
        return self.conditioning.model_copy(update={"excitation": self.mel.excitation})

    def section(self, family: str) -> VocoderSection:
        """The params section of ``family`` (``vocoder.<family>``)."""
        if family not in VOCODER_SECTIONS:
            raise ValueError(
                f"unknown vocoder family {family!r}; allowed: {', '.join(VOCODER_FAMILIES)}"
            )
        section: VocoderSection = getattr(self, family)
        return section


if TYPE_CHECKING:
    VocoderConfig = _VocoderSections
else:
    VocoderConfig = create_model(
        "VocoderConfig",
        __base__=_VocoderSections,
        __doc__=_VocoderSections.__doc__,
        **{family: (section, section()) for family, section in VOCODER_SECTIONS.items()},
    )


# --------------------------------------------------------------------------- VQ-VAE hierarchy


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
        "1": TierConfig(input="data/prepared", hop=8),
        "2": TierConfig(
            input="data/codes/1",
            hop=4,
            segment=512,
            wavenet=TierWaveNetConfig(layers=8, dilation_cycle=8),
        ),
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


class ReportConfig(Strict):
    """The stage `evaluate`: how much the listening page holds, so that it stays a few MB."""

    # Pieces per section: test pieces in the vocoders' rows, composed pieces, the
    # tiers' reconstructions, the prior's samples, piano rolls per evaluation set.
    pieces_per_section: int = Field(2, ge=1, le=50)
    # Seconds of each clip on the page, from the start of the piece.
    clip_seconds: float = Field(6.0, gt=0.0, le=600.0)
    # Compressed audio that browsers play: ogg (Vorbis, smallest) or flac (lossless).
    audio_format: Literal["ogg", "flac"] = "ogg"


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
    evaluation: EvaluationConfig = EvaluationConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _evaluation_piano_is_unseen(self) -> Params:
        """The evaluation's piano is one no model trains on."""
        reserved = Path(self.evaluation.soundfont).resolve()
        render = self.data.render
        for key, path in [("data.render.soundfont", render.soundfont)] + [
            ("data.render.soundfonts", path) for path in render.soundfonts
        ]:
            if Path(path).resolve() == reserved:
                raise ValueError(
                    f"evaluation.soundfont {self.evaluation.soundfont!r} is also a training "
                    f"piano ({key}); the unseen-piano evaluation needs one no model trains on"
                )
        return self

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> Params:
        """fp16 trains with a gradient scaler on CUDA; refused here, not at step 1."""
        for key, loop in train_loops(self):
            if loop.precision != "fp16":
                continue
            device, device_key = (
                (loop.device, f"{key}.device") if loop.device else (self.device, "device")
            )
            if device in ("cpu", "mps"):
                reason = f"{device_key} = {device!r}"
            elif not _cuda_available():
                reason = f"{device_key} = {device!r}, and this machine has no CUDA GPU"
            else:
                continue
            raise ValueError(
                f"{key}.precision = 'fp16' needs a CUDA GPU (half-precision training with a "
                f"gradient scaler), but {reason}; use 'bf16', 'fp32' or 'auto'"
            )
        return self

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
        if not (
            isinstance(audio, dict)
            and isinstance(section, dict)
            and isinstance(model, dict)
            and isinstance(mel, dict)
        ):
            return raw  # malformed sections are reported by the field validation
        if "sample_rate" in mel:
            raise ValueError(
                "transcription.model.mel.sample_rate: not a params key; the mel front end "
                "reads audio at audio.sample_rate, so set that instead"
            )
        rate = audio.get("sample_rate", AudioConfig().sample_rate)
        fmax = mel.get("fmax", MelConfig.model_fields["fmax"].default)
        numbers = (int, float)
        if isinstance(rate, numbers) and isinstance(fmax, numbers) and 0 < rate < 2 * fmax:
            # Reported under the key the user wrote, not the mel config it reaches.
            raise ValueError(
                f"audio.sample_rate = {rate}: its Nyquist frequency {rate / 2:g} Hz is below "
                f"transcription.model.mel.fmax = {fmax:g} Hz; raise the rate or lower fmax"
            )
        mel = {**mel, "sample_rate": rate}
        return {**raw, "transcription": {**section, "model": {**model, "mel": mel}}}

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)

    @model_serializer(mode="wrap")
    def _without_derived_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A dump is a params file: the mel front end's sample rate, which follows
        ``audio.sample_rate`` and is no key of the file, is left out."""
        dumped: dict[str, Any] = handler(self)
        mel = dumped.get("transcription", {}).get("model", {}).get("mel")
        if isinstance(mel, dict):
            mel.pop("sample_rate", None)
        return dumped

    def prepare_job(self) -> PrepareJob:
        """What `prepare_data` reads of the params."""
        return PrepareJob(self.data, self.audio.sample_rate, self.seed)


def train_loops(node: BaseModel, prefix: str = "") -> list[tuple[str, TrainLoopConfig]]:
    """Every training loop config under ``node``, with its dotted key
    (``transcription.train``, ``vqvae.tiers.1.train``...)."""
    found = []
    for name in type(node).model_fields:
        value = getattr(node, name)
        key = f"{prefix}{name}"
        if isinstance(value, TrainLoopConfig):
            found.append((key, value))
        elif isinstance(value, BaseModel):
            found += train_loops(value, f"{key}.")
        elif isinstance(value, dict):
            for sub, item in value.items():
                if isinstance(item, BaseModel):
                    found += train_loops(item, f"{key}.{sub}.")
    return found


def _cuda_available() -> bool:
    import torch  # only when fp16 is asked for: validating params needs no torch otherwise

    return bool(torch.cuda.is_available())


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
