"""Running one DVC stage as a subprocess, and telling its kinds of failure apart.

The stage runs through ``dvc repro --single-item``, so DVC's cache, run-cache and lock
file decide whether it needs to run at all, exactly as in a plain ``dvc repro``.
``--wait-for-lock`` lets stages that share no outputs run at the same time in one
workspace: DVC holds its repo lock only while it collects, hashes and commits, never
while a stage's command runs. A stage whose outputs another DVC process holds (another
person's `dvc repro` in the same checkout is running it) is refused by DVC at once;
with ``wait_while_busy`` the runner says who holds it and tries again until it is free.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wavegen_core.errors import EXIT_BAD_PARAMS, EXIT_FAILED

# Exit codes of wavegen's own stages that mean "the stage itself is wrong" (see
# stages/_common.py): retrying cannot help.
OWN_ERROR_CODES = {EXIT_FAILED: "stage error", EXIT_BAD_PARAMS: "invalid params"}

_EXITED = re.compile(r"exited with (-?\d+)")
# DVC's refusal when another DVC process holds a stage's outputs, and who holds them.
_BUSY = re.compile(r"'([^']+)' is busy, it is being blocked by:\s*(\(PID \d+\)[^\n]*)")
BUSY_POLL_SECONDS = 2.0
_PROGRESS = re.compile(r"\d+%\|")
# DVC's hints to an interactive user; noise in a Prefect log.
_HINTS = re.compile(
    r"^\s*(To track the changes with git|git add |To enable auto staging|dvc config core\.autostage"
    r"|Use `dvc push`)"
)


class StageFailed(RuntimeError):
    """The stage failed by its own error (bad params, bad data, a bug): do not retry."""


class StageBusy(StageFailed):
    """Another DVC process in this checkout holds the stage's outputs (DVC refused)."""


class StageInterrupted(RuntimeError):
    """The stage or DVC was killed from outside (a lost worker, OOM, preemption): retry.

    A retried training stage resumes from its last checkpoint; outputs are written
    atomically, so the killed attempt left nothing half-written behind.
    """


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    status: str  # "ran", "skipped" (unchanged) or "restored" (from the run-cache)
    seconds: float


def dvc(
    args: list[str],
    repo: Path,
    log: Callable[[str], None] | None = None,
    wait_while_busy: bool = False,
    poll_seconds: float = BUSY_POLL_SECONDS,
    environment: Mapping[str, str] | None = None,
) -> str:
    """Run ``dvc ARGS`` in ``repo``; return its output. Raises on failure (classified).

    With ``wait_while_busy``, a refusal because another DVC process holds the outputs
    is logged once, naming that process, and the command is run again every
    ``poll_seconds`` until it is not busy. ``environment`` is added to this process's
    for DVC and the stages it runs.
    """
    waiting_since = None
    while True:
        try:
            output = _dvc_once(args, repo, log, environment or {})
        except StageBusy as busy:
            if not wait_while_busy:
                raise
            if waiting_since is None:
                waiting_since = time.monotonic()
                if log is not None:
                    log(f"waiting: {busy}; trying again every {poll_seconds:g} s")
            time.sleep(poll_seconds)
            continue
        if waiting_since is not None and log is not None:
            log(f"no longer busy after {time.monotonic() - waiting_since:.1f} s of waiting")
        return output


def _dvc_once(
    args: list[str],
    repo: Path,
    log: Callable[[str], None] | None,
    environment: Mapping[str, str],
) -> str:
    command = ["dvc", *args]
    # This interpreter's environment first on PATH: its `dvc`, and the `python` that
    # the stages' commands name, even when a worker runs without the venv activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    process = subprocess.Popen(
        command,
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **environment, "PATH": path, "DVC_NO_ANALYTICS": "1"},
        # Its own process group, so that a kill of the stage reaches every child.
        start_new_session=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # text mode turns tqdm's \r updates into lines
        line = line.rstrip()
        lines.append(line)
        if log is not None and _worth_logging(line):
            log(line)
    code = process.wait()
    output = "\n".join(lines)
    if code != 0:
        raise classify_failure(command, code, output)
    return output


def _worth_logging(line: str) -> bool:
    if not line.strip() or _HINTS.match(line):
        return False
    return not _PROGRESS.search(line) or "100%|" in line


def classify_failure(command: list[str], code: int, output: str) -> Exception:
    """A :class:`StageInterrupted` for kills from outside, else a :class:`StageFailed`."""
    tail = "\n".join(line for line in output.splitlines() if line.strip())[-2000:]
    what = f"`{' '.join(command)}` failed"
    if code < 0:  # DVC itself was killed by a signal (its own failures exit 255)
        return StageInterrupted(f"{what}: dvc was killed (exit {code})\n{tail}")
    busy = _BUSY.search(output)
    if busy:
        return StageBusy(f"{busy.group(1)} is in use by another DVC process: {busy.group(2)}")
    match = _EXITED.search(output)
    if match:
        stage_code = int(match.group(1))
        if stage_code < 0 or stage_code >= 128:
            return StageInterrupted(f"{what}: the stage was killed (exit {stage_code})\n{tail}")
        reason = OWN_ERROR_CODES.get(stage_code, f"exit {stage_code}")
        return StageFailed(f"{what}: {reason}\n{tail}")
    return StageFailed(f"{what} (exit {code})\n{tail}")


def outcome_of(stage: str, output: str, seconds: float) -> StageOutcome:
    if f"Running stage '{stage}'" in output:
        status = "ran"
    elif "from run-cache" in output:
        status = "restored"
    else:
        status = "skipped"
    return StageOutcome(stage=stage, status=status, seconds=round(seconds, 3))
