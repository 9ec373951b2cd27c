"""Training curves and summary metrics in DVC's formats (the stage contract, rule 5).

Curves are dvclive's: one TSV per scalar under ``<dir>/plots/metrics/`` (``dvc plots
show``). The summary ``<dir>/metrics.json`` (``dvc metrics show``) is written by this
module, atomically, because dvclive writes it in place and a kill could leave it torn.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path

from dvclive.live import Live
from matplotlib.figure import Figure

from wavegen_core.files import atomic_open, atomic_path, write_json

CURVES_DIR = Path("plots") / "metrics"
SUMMARY_FILE = "metrics.json"
LOSS_PLOT_FILE = "loss_curves.png"


class MetricsLog:
    """Per-step scalars for one training run, in a directory that survives a kill and resume.

    ``after_step`` is the step the run starts after (0 for a fresh run, the checkpoint's
    step on resume): rows past it are dropped first, since a killed run may have logged
    steps its last checkpoint never saw, and the curves must not repeat a step.
    ``latest`` is the summary as of that step (the checkpoint's ``metrics``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        after_step: int,
        latest: Mapping[str, float] | None = None,
    ) -> None:
        self.directory = Path(directory)
        truncate_curves(self.directory, after_step)
        # resume=True stops dvclive from deleting the curves kept above; dvcyaml=None
        # and save_dvc_exp=False stop it from rewriting dvc.yaml or making experiments.
        self._live = Live(
            str(self.directory), resume=True, save_dvc_exp=False, dvcyaml=None, report=None
        )
        self.latest: dict[str, float] = dict(latest or {})

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Append one row at ``step`` to the curve of each scalar (named like ``train/loss``)."""
        self._live.step = step
        for name, value in scalars.items():
            self._live.log_metric(name, value)
        self.latest.update(scalars)

    def write_summary(self, step: int) -> None:
        """Write ``metrics.json``: the step and the latest value of every scalar, in name
        order (a resumed run first learns the names from its checkpoint, in another
        order, and must write the same file)."""
        write_json(
            self.directory / SUMMARY_FILE, {"step": step, **dict(sorted(self.latest.items()))}
        )


def truncate_curves(directory: str | os.PathLike[str], after_step: int) -> None:
    """Drop every curve row logged after ``after_step``, and any row a kill cut short."""
    for path in sorted((Path(directory) / CURVES_DIR).rglob("*.tsv")):
        _truncate_tsv(path, after_step)


def _truncate_tsv(path: Path, after_step: int) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    if len(lines) < 2:
        path.unlink()
        return
    header, rows = lines[0], lines[1:]
    step_column = header.rstrip("\r\n").split("\t").index("step")
    kept = [row for row in rows if int(row.split("\t")[step_column]) <= after_step]
    if not kept:
        path.unlink()
    elif len(kept) < len(rows) or not text.endswith("\n"):
        with atomic_open(path) as handle:
            handle.write(header + "".join(kept))


def read_curves(directory: str | os.PathLike[str]) -> dict[str, tuple[list[int], list[float]]]:
    """Every logged curve as ``{name: (steps, values)}``, names like ``train/loss``."""
    root = Path(directory) / CURVES_DIR
    curves = {}
    for path in sorted(root.rglob("*.tsv")):
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        name = path.relative_to(root).with_suffix("").as_posix()
        steps = [int(row["step"]) for row in rows]
        values = [float(row[path.stem]) for row in rows]
        curves[name] = (steps, values)
    return curves


def write_loss_plot(directory: str | os.PathLike[str]) -> Path:
    """Draw every curve whose name contains ``loss`` into ``<directory>/loss_curves.png``.

    Read back from the TSVs, so a resumed run's picture shows its whole history. The
    y axis is logarithmic when every value is positive, as losses that fall by orders
    of magnitude are otherwise a flat line after the first steps.
    """
    curves = {name: c for name, c in read_curves(directory).items() if "loss" in name}
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    for name, (steps, values) in curves.items():
        axes.plot(steps, values, label=name, marker="." if len(steps) < 50 else None)
    finite = [v for _, values in curves.values() for v in values if math.isfinite(v)]
    if finite and min(finite) > 0:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    if curves:
        axes.legend()
    figure.tight_layout()
    path = Path(directory) / LOSS_PLOT_FILE
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path
