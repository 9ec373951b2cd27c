"""Self-describing checkpoints, written atomically (the stage contract, rules 3 and 4).

A checkpoint is one ``torch.save``d dict, in the manner of nanoGPT, that carries what is
needed to rebuild the model and to resume training from nothing but its path:

``state``      the model's ``state_dict``
``optimizer``  the optimiser's ``state_dict`` (a dict of them by name, for a model
               trained with several, such as a GAN's two networks)
``scheduler``  the learning-rate scheduler's ``state_dict``, or None (by name likewise)
``config``     the model/stage config as a plain dict (JSON types)
``step``       how many training steps the weights have seen
``metrics``    the latest value of every logged scalar (``train/loss``, ``eval/...``)
``rng``        the global generators' state, see :mod:`wavegen_core.seeding`
``scaler``     the fp16 gradient scaler's ``state_dict`` (only in fp16 runs)
``rng_by_rank`` every data-parallel rank's generators, in rank order (only in runs of
               several processes; ``rng`` is rank 0's)

Everything in it is a tensor or a plain Python value, so it loads with
``torch.load(weights_only=True)``: opening a checkpoint never runs pickled code.

The same state gives the same bytes, so that DVC gives a resumed run and an
uninterrupted one the same hash. ``torch.save`` alone does not: pickle writes an object
met twice as a reference to the first, and whether two equal strings are one object
depends on where they came from (the optimiser's own ``"step"`` key and ours are one
interned string in a fresh run, two after a resume loaded it); and every archive
carries a random ``serialization_id``. :func:`save_checkpoint` rebuilds the containers
and interns the strings first, and derives the id from the archive's content.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from wavegen_core.files import atomic_open
from wavegen_core.seeding import capture_rng

Checkpoint = dict[str, Any]
# What a checkpoint's training state is saved from and restored into: one optimiser and
# its scheduler, or mappings of them by name (one per network of an adversarial model).
Optimisers = torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer]
Schedulers = LRScheduler | None | Mapping[str, LRScheduler | None]


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
    optimiser: Optimisers,
    *,
    step: int,
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    scheduler: Schedulers = None,
    scaler: torch.amp.GradScaler | None = None,
    rng_by_rank: list[Any] | None = None,
) -> None:
    """Write the training state at ``step`` to ``path``, replacing any older checkpoint whole.

    ``config`` must be JSON-serialisable (for pydantic, ``model_dump(mode="json")``).
    The global generators are captured here, so call this after everything of step
    ``step`` that draws random numbers has run.
    """
    checkpoint: Checkpoint = {
        "state": model.state_dict(),
        "optimizer": _state(optimiser),
        "scheduler": _state(scheduler),
        "config": plain_config(config),
        "step": step,
        # In name order: the order scalars were first logged differs after a resume.
        "metrics": dict(sorted(metrics.items())),
        "rng": capture_rng(),
    }
    if scaler is not None:
        checkpoint["scaler"] = scaler.state_dict()
    if rng_by_rank is not None:
        checkpoint["rng_by_rank"] = list(rng_by_rank)
    # Serialised in memory first: torch.save names the archive's inner folder after the
    # file it writes, and the temporary name would make equal checkpoints differ in bytes
    # (and so in their DVC hash).
    buffer = io.BytesIO()
    torch.save(canonical(checkpoint), buffer)
    with atomic_open(path, "wb") as handle:
        handle.write(with_content_serialization_id(buffer.getvalue()))


def canonical(value: Any) -> Any:
    """``value`` rebuilt so that pickle writes it the same whatever its history: new
    containers (none shared), strings interned (equal ones shared), tensors as they are.
    A dict subclass keeps its type and attributes (a ``state_dict``'s ``_metadata``)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        rebuilt = type(value)((canonical(k), canonical(v)) for k, v in value.items())
        for name, attribute in getattr(value, "__dict__", {}).items():
            setattr(rebuilt, name, canonical(attribute))
        return rebuilt
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, tuple):
        return tuple(canonical(item) for item in value)
    return value


SERIALIZATION_ID = ".data/serialization_id"


def with_content_serialization_id(archive: bytes) -> bytes:
    """``torch.save``'s archive with its random ``serialization_id`` replaced by a hash of
    everything written before it (same length), and that record's CRC-32 fixed wherever
    the zip format keeps it (the local header or the data descriptor, and the central
    directory)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        found = [i for i in opened.infolist() if i.filename.endswith(SERIALIZATION_ID)]
    if not found:
        return archive
    info = found[0]
    out = bytearray(archive)
    name_length, extra_length = struct.unpack_from("<HH", out, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    size = info.compress_size
    digest = hashlib.sha1(bytes(out[:start])).hexdigest().encode()
    out[start : start + size] = (digest * (size // len(digest) + 1))[:size]
    crc = zlib.crc32(bytes(out[start : start + size]))
    if info.flag_bits & 0x08:  # a data descriptor after the data holds the CRC
        descriptor = (
            start + size + (4 if out[start + size : start + size + 4] == b"PK\x07\x08" else 0)
        )
        struct.pack_into("<I", out, descriptor, crc)
    else:
        struct.pack_into("<I", out, info.header_offset + 14, crc)
    name = info.filename.encode()
    entry = out.find(b"PK\x01\x02")
    while entry != -1:
        length = struct.unpack_from("<H", out, entry + 28)[0]
        if out[entry + 46 : entry + 46 + length] == name:
            struct.pack_into("<I", out, entry + 16, crc)
            break
        entry = out.find(b"PK\x01\x02", entry + 4)
    return bytes(out)


def _state(held: Any) -> Any:
    """The ``state_dict`` of an optimiser or scheduler, of each of a mapping of them, or None."""
    if held is None:
        return None
    if isinstance(held, Mapping):
        return {name: _state(value) for name, value in held.items()}
    return held.state_dict()


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; tensors go to ``map_location``."""
    checkpoint: Checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    return checkpoint


def load_training_state(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimiser: Optimisers,
    scheduler: Schedulers = None,
) -> None:
    """Put a checkpoint's weights, optimiser and scheduler state into live objects
    (one of each, or mappings by name as they were saved).

    The random-number state is left to the caller (``restore_rng(checkpoint["rng"])``),
    which must restore it last, after anything else that draws random numbers.
    """
    model.load_state_dict(checkpoint["state"])
    _load_state(optimiser, checkpoint["optimizer"], "optimiser")
    _load_state(scheduler, checkpoint["scheduler"], "scheduler")


def _load_state(held: Any, state: Any, what: str) -> None:
    if held is None:
        return
    if isinstance(held, Mapping):
        if not isinstance(state, Mapping) or set(state) != set(held):
            raise ValueError(f"the checkpoint's {what} state is not one per name of {sorted(held)}")
        for name, value in held.items():
            _load_state(value, state[name], f"{what} {name!r}")
        return
    if state is None:
        raise ValueError(f"the checkpoint has no {what} state, but a {what} was given")
    held.load_state_dict(state)
