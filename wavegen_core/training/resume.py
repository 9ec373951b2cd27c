"""Resuming a run from its checkpoint, so that a killed run ends as one never killed.

:func:`resume` puts the checkpoint's weights, optimiser, scheduler and scaler state into
the live objects and returns the step and metrics to continue from; a checkpoint of
another run (another config, or past ``loop.steps``) is not resumed from but replaced.
The global generators are restored apart, by :func:`start_random_streams`, as the last
thing before the first step, so that nothing drawn while setting up shifts the
training stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wavegen_core import parallel
from wavegen_core.checkpoint import (
    Checkpoint,
    Optimisers,
    Schedulers,
    load_checkpoint,
    load_training_state,
)
from wavegen_core.progress import log
from wavegen_core.seeding import restore_rng, seed_everything


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run continues: the checkpoint's step, its latest metrics, and this
    rank's generators (restored by :func:`start_random_streams`)."""

    step: int
    metrics: dict[str, float]
    rng: Any


def resume(
    checkpoint_path: Path,
    *,
    config: Mapping[str, Any],
    steps: int,
    model: nn.Module,
    optimisers: Optimisers,
    schedulers: Schedulers,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
    world: parallel.World = parallel.ALONE,
) -> Resumed | None:
    """Restore the run at ``checkpoint_path`` into ``model``, ``optimisers``,
    ``schedulers`` and ``scaler`` (as :func:`~wavegen_core.checkpoint.save_checkpoint`
    took them), if the checkpoint belongs to this run; None for a fresh start: no
    checkpoint, or one written with another ``config`` or past ``steps``."""
    checkpoint = _checkpoint_of_this_run(checkpoint_path, config, steps, device)
    if checkpoint is None:
        return None
    load_training_state(checkpoint, model, optimisers, schedulers)
    if scaler is not None:
        scaler.load_state_dict(checkpoint["scaler"])
    log.info("resuming from step %d (%s)", checkpoint["step"], checkpoint_path)
    return Resumed(checkpoint["step"], checkpoint["metrics"], _rng_of_rank(checkpoint, world))


def start_random_streams(resumed: Resumed | None, world: parallel.World) -> None:
    """Set the global generators for the first step: a resumed run's saved ones; in a
    fresh run of several processes, a stream of its own for each rank but 0. Call it
    last before training, after everything else that might draw from them."""
    if resumed is not None:
        restore_rng(resumed.rng)
    elif world.size > 1 and not world.main:
        # Each rank its own dropout and noise; rank 0 keeps the single-process stream.
        seed_everything((torch.initial_seed() + 1_000_003 * world.rank) % 2**32)


def _checkpoint_of_this_run(
    path: Path, config: Mapping[str, Any], steps: int, device: torch.device
) -> Checkpoint | None:
    """The checkpoint at ``path`` if it belongs to this run, else None (a fresh start)."""
    if not path.exists():
        return None
    checkpoint = load_checkpoint(path, map_location=device)
    changed = _changed_keys(checkpoint["config"], config)
    if changed:
        log.info(
            "not resuming from %s: it was written with other values of %s; starting afresh",
            path,
            ", ".join(changed),
        )
        return None
    if checkpoint["step"] > steps:
        log.info(
            "not resuming from %s: its step %d is past loop.steps=%d; starting afresh",
            path,
            checkpoint["step"],
            steps,
        )
        return None
    return checkpoint


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the keys whose values differ between two nested config dicts."""
    changed = []
    for key in sorted(set(old) | set(new), key=str):
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changed += _changed_keys(before, after, f"{prefix}{key}.")
        elif before != after or (key in old) != (key in new):
            changed.append(f"{prefix}{key}")
    return changed


def _rng_of_rank(checkpoint: Checkpoint, world: parallel.World) -> Any:
    """This rank's saved generators; rank 0's when the checkpoint has no state for it
    (written by another number of processes: the weights resume, the streams restart)."""
    by_rank = checkpoint.get("rng_by_rank")
    if by_rank is not None and len(by_rank) == world.size:
        return by_rank[world.rank]
    if world.size > 1 and not world.main:
        log.info("the checkpoint holds no generator state for rank %d", world.rank)
    return checkpoint["rng"]
