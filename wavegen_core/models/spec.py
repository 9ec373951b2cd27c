"""What every trained model offers the rest of the library: its spec.

A spec says how to build a model from the config its checkpoint records, how to load a
trained one from nothing but that checkpoint's path, and what training needs of it:
its optimisers with their learning-rate schedules, and whether it samples
autoregressively. Each model file ends with its spec (``SPEC``); the vocoder families
are found by name through :func:`wavegen_core.models.vocoders.vocoder_spec`.

Building from the recorded config (rather than from a params section) is what makes a
checkpoint self-describing: training builds its model from the very dict it saves, so
a loaded model is the one that was trained.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from wavegen_core.checkpoint import Checkpoint, load_checkpoint
from wavegen_core.errors import WavegenError
from wavegen_core.models.vocoders.config import ConditioningConfig, MelFramesConfig, VocoderSection
from wavegen_core.param_types import TrainLoopConfig

ModelT = TypeVar("ModelT", bound=nn.Module)
# One step of a vocoder trained in phases: (audio, roll, carry) -> (loss, extras); the
# phases of a training step share ``carry``.
PhaseLoss = Callable[
    [torch.Tensor, torch.Tensor, dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]
]


class TrainingPair(Protocol):
    """A training piece as a vocoder family reads it: audio of ``samples`` samples and
    its conditioning roll (ROLL_CHANNELS, frames), one frame per hop of samples, read a
    range at a time (the piece may be streamed from disk)."""

    @property
    def samples(self) -> int: ...

    @property
    def frames(self) -> int: ...

    def read(self, start: int, count: int) -> np.ndarray: ...

    def roll_window(self, first: int, n: int) -> np.ndarray: ...


@dataclass
class Optimiser:
    """One optimiser and its learning-rate schedule (None: constant).

    A model trained by one objective has one, named ``""``; an adversarial model has
    one per network, named for the network, each stepped on its own loss. One with a
    ``first_step`` above 1 joins training at that step: before it, its phase is skipped.
    """

    name: str
    torch_optimiser: torch.optim.Optimizer
    scheduler: LRScheduler | None = None
    first_step: int = 1


def adam(model: nn.Module, loop: TrainLoopConfig) -> list[Optimiser]:
    """Adam over every parameter at the loop's learning rate, with no schedule."""
    optimiser = torch.optim.Adam(
        model.parameters(), lr=loop.learning_rate, weight_decay=loop.weight_decay
    )
    return [Optimiser("", optimiser)]


class ModelSpec(ABC, Generic[ModelT]):
    """How to build, load and optimise one kind of model.

    Subclasses implement :meth:`build` (and, where it differs, :meth:`optimisers` and
    :meth:`inference_state`) and add a ``checkpoint_config`` that records what ``build``
    reads, from the params section and whatever else the model depends on.
    """

    name: str = ""
    autoregressive: bool = False

    @abstractmethod
    def build(self, saved: Mapping[str, Any]) -> ModelT:
        """A freshly initialised model from a ``checkpoint_config`` dict (seed first)."""

    def optimisers(
        self, model: ModelT, loop: TrainLoopConfig, saved: Mapping[str, Any]
    ) -> list[Optimiser]:
        """What training steps, given the loop and the model's recorded config: Adam over
        every parameter at the loop's learning rate unless the model says otherwise."""
        return adam(model, loop)

    def inference_state(self, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        """The part of a checkpoint's ``state`` that inference loads (all of it by default)."""
        return state

    def build_for_inference(self, saved: Mapping[str, Any]) -> ModelT:
        """The model :meth:`load` fills (the training model unless it carries more)."""
        return self.build(saved)

    def load(self, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ModelT:
        """A trained model from its checkpoint alone, on ``device``, in eval mode."""
        return self.from_checkpoint(load_checkpoint(path, map_location=device), device)

    def from_checkpoint(self, checkpoint: Checkpoint, device: str | torch.device = "cpu") -> ModelT:
        """:meth:`load` for a checkpoint already read."""
        model = self.build_for_inference(checkpoint["config"])
        model.load_state_dict(self.inference_state(checkpoint["state"]))
        return model.to(device).eval()


class VocoderSpec(ModelSpec[ModelT]):
    """A MIDI-conditioned vocoder family: its section class, its network, its checkpoint.

    Every family's network is built as ``model_class(section, conditioning,
    sample_rate)`` and offers ``loss(audio, roll)`` and ``generate(roll, ...)``
    (:class:`wavegen_core.models.vocoders.registry.Vocoder`).
    """

    def __init__(self, section_class: type[VocoderSection], model_class: type[ModelT]) -> None:
        self.name = section_class.family
        self.section_class = section_class
        self.model_class = model_class
        self.autoregressive = section_class.autoregressive
        self.whole_pieces = section_class.whole_pieces

    def checkpoint_config(
        self,
        section: VocoderSection,
        conditioning: ConditioningConfig,
        sample_rate: int,
        seed: int,
        mel: MelFramesConfig | None = None,
    ) -> dict[str, Any]:
        """What a vocoder checkpoint carries to rebuild its model (and to tell runs
        apart); ``mel`` for a model conditioned on log-mel frames."""
        saved = {
            "family": self.name,
            "model": section.model_dump(mode="json", exclude={"train"}),
            "conditioning": conditioning.model_dump(mode="json"),
            "sample_rate": sample_rate,
            "seed": seed,
        }
        if mel is not None:
            saved["mel"] = mel.model_dump(mode="json")
        return saved

    def load(self, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ModelT:
        """As :meth:`ModelSpec.load`, refusing another family's checkpoint by name."""
        checkpoint = load_checkpoint(path, map_location=device)
        family = checkpoint["config"].get("family")
        if family != self.name:
            raise WavegenError(f"{path} holds a {family} model, not {self.name}")
        return self.from_checkpoint(checkpoint, device)

    def initialise(self, model: ModelT, train: Sequence[TrainingPair]) -> None:
        """Set what the family measures on its training pairs before step 1 (nothing by
        default). It must be deterministic: a resumed run then loads its checkpoint over
        the same start."""

    def phase_losses(self, model: ModelT) -> Mapping[str, PhaseLoss] | None:
        """For a family trained in phases (one per named optimiser), each phase's loss;
        None for one trained by ``model.loss`` alone."""
        return None

    def section(self, saved: Mapping[str, Any]) -> VocoderSection:
        """The family's section as the checkpoint recorded it."""
        return self.section_class.model_validate(saved["model"])

    def build(self, saved: Mapping[str, Any]) -> ModelT:
        conditioning = ConditioningConfig.model_validate(saved["conditioning"])
        section, rate = self.section(saved), int(saved["sample_rate"])
        if "mel" in saved:
            mel = MelFramesConfig.model_validate(saved["mel"])
            return self.model_class(section, conditioning, rate, mel=mel)
        return self.model_class(section, conditioning, rate)
