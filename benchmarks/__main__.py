"""Run every benchmark and print a table; results also go to benchmarks/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from benchmarks import (
    bench_dvc,
    bench_flow,
    bench_music_transformer,
    bench_prepare,
    bench_threads,
    bench_transcription,
    bench_vocoder,
    bench_vqvae,
)
from wavegen_core.files import write_json

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main() -> None:
    rows = (
        bench_prepare.run()
        + bench_transcription.run()
        + bench_music_transformer.run()
        + bench_vocoder.run()
        + bench_vqvae.run()
        + bench_dvc.run()
        + bench_flow.run()
        + bench_threads.run()
    )
    machine = {
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    write_json(RESULTS, {"machine": machine, "results": rows})
    print(json.dumps(machine))
    for row in rows:
        figures = ", ".join(f"{k}={v}" for k, v in row.items() if k != "name")
        print(f"{row['name']:<60} {figures}")


if __name__ == "__main__":
    main()
