"""DVC experiments side by side in a terminal: ``wavegen exps``.

``dvc exp show`` makes every param and metric of every stage a column, hundreds of
them, and a terminal shows only ellipses. This reads ``dvc exp show --json`` and keeps,
one row per experiment (and the workspace and its baseline commit), the summary's
headline figures (``reports/evaluate/summary.json``, written by ``evaluate``) and only
the params whose values differ between the rows.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wavegen_core.errors import WavegenError

SUMMARY_FILE = "reports/evaluate/summary.json"
# The summary's headline figures, as globs over its flattened keys: each area's one
# number to compare first. ``--metric`` replaces them.
HEADLINE = (
    "transcription.*.ours.onset_f1",
    "symbolic.test_nll",
    "vocoder.*.judge_f1",
    "tiers.*.usage",
    "prior.nll",
)
# Short column names: the summary's keys are long, and a row must fit a terminal.
_PREFIXES = (("transcription.", "tr."), ("symbolic.", "sym."), ("vocoder.", "voc."))


@dataclass(frozen=True)
class Experiment:
    """One row: a name, its params (flattened, every params file) and its summary."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, Any]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; lists stay values."""
    if not isinstance(value, Mapping):
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, sub in value.items():
        flat.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _experiment(name: str, data: Mapping[str, Any], summary: str) -> Experiment:
    params: dict[str, Any] = {}
    for file_name, content in sorted((data.get("params") or {}).items()):
        flat = flatten((content or {}).get("data") or {})
        # Keys of params.yaml as DVC's `-S` writes them; other files' under their name.
        scope = "" if file_name == "params.yaml" else f"{file_name}:"
        params.update({f"{scope}{key}": value for key, value in flat.items()})
    metrics = flatten(((data.get("metrics") or {}).get(summary) or {}).get("data") or {})
    return Experiment(name, params, metrics)


def experiments_of(
    shown: Sequence[Mapping[str, Any]], summary: str = SUMMARY_FILE
) -> list[Experiment]:
    """The rows of ``dvc exp show --json``: the workspace, each baseline commit (its
    branch name and short hash) and, indented under it, its experiments, newest first
    as DVC lists them."""
    rows = []
    for entry in shown:
        rev = str(entry.get("rev", ""))
        name = "workspace" if rev == "workspace" else f"{entry.get('name') or rev[:7]} ({rev[:7]})"
        if entry.get("data"):
            rows.append(_experiment(name, entry["data"], summary))
        for experiment in entry.get("experiments") or []:
            for run in experiment.get("revs") or []:
                if run.get("data"):
                    label = run.get("name") or str(run.get("rev", ""))[:7]
                    # Indented under the commit it was run from, as `dvc exp show` does.
                    rows.append(_experiment(f"  {label}", run["data"], summary))
    return rows


def differing(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every row (absent counts as a value)."""
    keys = sorted({key for row in rows for key in row})
    return [
        key for key in keys if len({json.dumps(row.get(key), sort_keys=True) for row in rows}) > 1
    ]


def headline_keys(rows: Sequence[Experiment], patterns: Iterable[str]) -> list[str]:
    """The metric keys matching ``patterns``, in the order of the patterns."""
    present = sorted({key for row in rows for key in row.metrics})
    keys: list[str] = []
    for pattern in patterns:
        keys += [key for key in present if fnmatch.fnmatchcase(key, pattern) and key not in keys]
    return keys


def short(key: str) -> str:
    """A column name for a summary key: ``transcription.test.ours.onset_f1`` as
    ``tr.test.onset_f1``."""
    for long, abbreviated in _PREFIXES:
        if key.startswith(long):
            key = abbreviated + key[len(long) :]
    return key.replace(".ours.", ".")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: Sequence[Experiment], patterns: Iterable[str] = HEADLINE) -> str:
    """One line per experiment: its name, the headline figures, the params that differ."""
    if not rows:
        raise WavegenError("no experiments: run `dvc exp run` (or `wavegen run -S`) first")
    metric_keys = headline_keys(rows, patterns)
    param_keys = differing([row.params for row in rows])
    header = ["experiment", *(short(k) for k in metric_keys), *param_keys]
    body = [
        [row.name, *(_cell(row.metrics.get(k)) for k in metric_keys)]
        + [_cell(row.params.get(k)) for k in param_keys]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    if not metric_keys:
        lines.append(f"(no figures: {SUMMARY_FILE} is written by the `evaluate` stage)")
    return "\n".join(lines)
