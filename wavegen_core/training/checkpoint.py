"""Self-describing checkpoints, written atomically (the stage contract, rules 3 and 4).

A checkpoint is one ``torch.save``d dict, in the manner of nanoGPT, that carries what is
needed to rebuild the model and to resume training from nothing but its path:

``state``      the model's ``state_dict``
``optimizer``  the optimizer's ``state_dict``
``scheduler``  the learning-rate scheduler's ``state_dict``, or None
``config``     the model/stage config as a plain dict (JSON types)
``step``       how many training steps the weights have seen
``metrics``    the latest value of every logged scalar (``train/loss``, ``eval/...``)
``rng``        the global generators' state, see :mod:`wavegen_core.training.seeding`

Everything in it is a tensor or a plain Python value, so it loads with
``torch.load(weights_only=True)``: opening a checkpoint never runs pickled code.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from wavegen_core.files import atomic_open
from wavegen_core.training.seeding import capture_rng

Checkpoint = dict[str, Any]


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as JSON types only (tuples become lists), or a TypeError now.

    A value of another type would be saved without complaint and then refused by the
    weights-only loader at resume time, long after the run that wrote it.
    """
    plain: dict[str, Any] = json.loads(json.dumps(config))
    return plain


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    scheduler: LRScheduler | None = None,
) -> None:
    """Write the training state at ``step`` to ``path``, replacing any older checkpoint whole.

    ``config`` must be JSON-serialisable (for pydantic, ``model_dump(mode="json")``).
    The global generators are captured here, so call this after everything of step
    ``step`` that draws random numbers has run.
    """
    checkpoint: Checkpoint = {
        "state": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "config": plain_config(config),
        "step": step,
        "metrics": dict(metrics),
        "rng": capture_rng(),
    }
    # Serialised in memory first: torch.save names the archive's inner folder after the
    # file it writes, and the temporary name would make equal checkpoints differ in bytes
    # (and so in their DVC hash).
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; tensors go to ``map_location``."""
    checkpoint: Checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    return checkpoint


def load_training_state(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler | None = None,
) -> None:
    """Put a checkpoint's weights, optimizer and scheduler state into live objects.

    The random-number state is left to the caller (``restore_rng(checkpoint["rng"])``),
    which must restore it last, after anything else that draws random numbers.
    """
    model.load_state_dict(checkpoint["state"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None:
        if checkpoint["scheduler"] is None:
            raise ValueError("the checkpoint has no scheduler state, but a scheduler was given")
        scheduler.load_state_dict(checkpoint["scheduler"])
