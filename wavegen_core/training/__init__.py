"""The training machinery every training stage shares.

``fit`` runs a resumable, exactly repeatable training loop; the modules beside it are
its parts, usable on their own: seeds and random-number state (``seeding``), device
choice (``device``), self-describing atomic checkpoints (``checkpoint``) and dvclive
curves with a summary and a loss picture (``metrics``).
"""

from wavegen_core.training.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_training_state,
    plain_config,
    save_checkpoint,
)
from wavegen_core.training.device import DeviceUnavailableError, choose_device
from wavegen_core.training.loop import NonFiniteLossError, TrainResult, fit, move_to
from wavegen_core.training.metrics import MetricsLog, read_curves, truncate_curves, write_loss_plot
from wavegen_core.training.seeding import (
    RngState,
    capture_rng,
    preserved_rng,
    restore_rng,
    seed_everything,
    step_generator,
)

__all__ = [
    "Checkpoint",
    "DeviceUnavailableError",
    "MetricsLog",
    "NonFiniteLossError",
    "RngState",
    "TrainResult",
    "capture_rng",
    "choose_device",
    "fit",
    "load_checkpoint",
    "load_training_state",
    "move_to",
    "plain_config",
    "preserved_rng",
    "read_curves",
    "restore_rng",
    "save_checkpoint",
    "seed_everything",
    "step_generator",
    "truncate_curves",
    "write_loss_plot",
]
