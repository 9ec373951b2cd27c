"""Seeds and random-number state: what makes a training run repeatable and resumable.

Two kinds of randomness meet in a training loop. The data a step sees is drawn from
:func:`step_generator`, a generator that depends only on ``(seed, step)``, so a resumed
run draws the same batches without replaying a data loader. Everything else (dropout,
noise inside a model) draws from the global generators, whose state is saved in every
checkpoint by :func:`capture_rng` and put back by :func:`restore_rng`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

RngState = dict[str, Any]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device), and ask cuDNN for repeatable kernels.

    cuDNN's autotuner picks kernels by timing them, which differs between runs; turning
    it off costs little. Full ``torch.use_deterministic_algorithms`` is not switched on:
    on GPU it makes some ops much slower or refuses them, and CPU runs are repeatable
    without it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _hashed_generator(entropy: list[int]) -> torch.Generator:
    """A CPU generator seeded by NumPy's ``SeedSequence`` hash of ``entropy``."""
    mixed = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed))


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for the batch of training step ``step``, a function of (seed, step) only.

    NumPy's ``SeedSequence`` hashes the pair into a 64-bit seed, so neighbouring seeds
    or steps give unrelated streams and no two pairs collide the way ``seed + step``
    would.
    """
    return _hashed_generator([seed, step])


def augment_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for the augmentation of training step ``step``'s batch: a function of
    (seed, step) only, and a stream apart from :func:`step_generator`'s, so turning
    augmentation on leaves the excerpts drawn the same."""
    return _hashed_generator([seed, step, 1])


def capture_rng() -> RngState:
    """The state of every global generator, in types ``torch.load(weights_only=True)`` accepts.

    CUDA states are captured only once CUDA is in use: asking earlier would create a
    context on every visible GPU, and an unused generator has nothing to restore.
    """
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


def restore_rng(state: RngState) -> None:
    """Put back what :func:`capture_rng` returned.

    Tensors may arrive on a GPU (a checkpoint loaded with ``map_location="cuda"``); the
    setters want them on the CPU. CUDA states are restored when this machine has the
    same number of GPUs; a run moved to another machine keeps its CPU streams only.
    """
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {
                "key": numpy_state["key"].cpu().numpy().astype(np.uint32),
                "pos": numpy_state["pos"],
            },
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state["cuda"]
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving any global generator forward.

    Evaluation and sampling inside a training run use this, so that the weights a run
    ends with do not depend on how often, or whether, it evaluated.
    """
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)
