"""Wall time of `dvc repro` of the default pipeline in a fresh clone, then of a no-op rerun."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
NOOP_REPEATS = 5


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "wavegen"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        env["PYTHONPATH"] = str(clone)
        full = _timed(["dvc", "repro"], clone, env)
        noop = [_timed(["dvc", "repro"], clone, env) for _ in range(NOOP_REPEATS)]
    return [
        {"name": "dvc repro, default (tiny) pipeline, fresh clone", "wall_s": round(full, 2)},
        {
            "name": f"dvc repro, no-op (median of {NOOP_REPEATS})",
            "wall_s": round(statistics.median(noop), 2),
        },
    ]
