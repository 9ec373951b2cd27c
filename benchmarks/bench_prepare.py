"""Data preparation throughput: seconds of audio prepared per wall-clock second.

Renders the first N chorales with FluidSynth through `prepare_corpus`, once with one
worker and once with one worker per core, in a temporary directory.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from wavegen_core.data.prepare import prepare_corpus
from wavegen_core.params import validate_params

PIECES = 48


def measure(workers: int, pieces: int = PIECES) -> dict[str, Any]:
    params = validate_params({"data": {"max_pieces": pieces, "num_workers": workers}})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = prepare_corpus(params.prepare_job(), Path(tmp) / "prepared")
        wall = time.perf_counter() - start
    audio_seconds = sum(piece.duration for piece in result.pieces)
    return {
        "name": f"prepare_data ({pieces} chorales, {workers} worker{'s' * (workers > 1)})",
        "wall_s": round(wall, 2),
        "audio_s": round(audio_seconds, 1),
        "audio_s_per_wall_s": round(audio_seconds / wall, 1),
    }


def run() -> list[dict[str, Any]]:
    cores = os.cpu_count() or 1
    return [measure(1), measure(cores)]
