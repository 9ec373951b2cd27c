"""Where a training stage trains, and how many processes it runs as.

Only the training stages import this (it brings torch and the training loop's
data-parallel module): the others keep their dependencies, and their DVC hashes, as
they are.
"""

from __future__ import annotations

import argparse

import torch

from wavegen_core import parallel
from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.params import Params, ParamsError
from wavegen_core.training.device import choose_device


def training_device(
    params: Params, loop: TrainLoopConfig, key: str, args: argparse.Namespace
) -> torch.device:
    """The device a training stage trains on (``<key>.device``, else ``device``).

    With ``<key>.nproc`` above 1, a stage not yet under torchrun starts itself again as
    that many processes (``torchrun --standalone``) and exits with their exit code when
    they finish; each of those joins the group here and trains on its rank's device.
    """
    device = choose_device(loop.device or params.device, param=f"{key}.device")
    nproc = parallel.process_count(loop.nproc, device, loop.batch_size)
    if nproc > 1 and not parallel.under_torchrun():
        if loop.batch_size % nproc:
            raise ParamsError(
                args.params,
                [
                    f"{key}.batch_size = {loop.batch_size} does not split evenly over "
                    f"{key}.nproc = {nproc} processes; make it a multiple of {nproc}"
                ],
            )
        module, argv = args.stage_command
        raise SystemExit(parallel.relaunch(module, argv, nproc, f"{key}.nproc"))
    _, device = parallel.join(device)
    return device
