"""Threads per stage: two stages on one machine, and what the thread count changes.

``python -m benchmarks.bench_threads [speed|outputs]`` (both by default; in ``make
bench``; about 15 minutes on 2 cores). Run it alone: it measures contention, so any
other process on the cores changes every figure.

* ``speed``: two training stages at the cpu profile's model sizes on a 3-piece corpus
  (the transcriber, and the Music Transformer on the MIDI), each alone (at torch's
  default, and with ``OMP_WAIT_POLICY=PASSIVE``), then both at once under three
  settings: torch's default (every stage takes every core, OpenMP spins while it
  waits), the same with passive waiting, and the runner's share (``WAVEGEN_THREADS`` =
  cores / 2, passive). Each stage's speed is its training loop's own (steps over the
  seconds of its progress bar), start-up left out.
* ``outputs``: the tiny pipeline (every vocoder family) run at 1 thread; then each stage
  again, alone, at 2 threads on the same inputs, and its outputs' hashes compared with
  the 1-thread run's.

The whole DAG by the flow against `dvc repro` is ``python -m benchmarks.bench_flow``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.dag import load_graph
from tools.workspace import set_params, tiny_repo_copy
from wavegen_core.models.vocoders.registry import vocoder_families
from wavegen_core.threads import machine_cores, share

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINING_STAGES = ("train_transcriber", "train_music_transformer")
# Steps that take each stage about 30 s alone on 2 cores at the cpu profile.
STEPS = {"transcription": 100, "music_transformer": 30}
_BAR = re.compile(r"train: 100%\|[^|]*\| (\d+)/\1 \[(?:(\d+):)?(\d+):(\d+)<")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}}
    env.pop("WAVEGEN_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _run(cmd: list[str] | str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, shell=isinstance(cmd, str), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{cmd} exited {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout + done.stderr


def steps_per_second(log: str) -> float:
    """The training loop's speed from the last full progress bar of a stage's log."""
    found = _BAR.findall(log.replace("\r", "\n"))
    if not found:
        raise ValueError("no finished training progress bar in the log")
    steps, hours, minutes, seconds = found[-1]
    elapsed = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return int(steps) / max(elapsed, 1)


def _cpu_profile_repo(root: Path, env: dict[str, str]) -> Path:
    repo = tiny_repo_copy(REPO_ROOT, root, env)
    _run(["wavegen", "profile", "cpu"], repo, env)
    set_params(repo, "data", max_pieces=3, **{"variants.etudes": 2, "variants.etude_seconds": 10.0})
    long_eval = {"eval_every": 100_000, "checkpoint_every": 100_000, "log_every": 10}
    for section, steps in STEPS.items():
        set_params(
            repo,
            section,
            **{"train.steps": steps, **{f"train.{k}": v for k, v in long_eval.items()}},
        )
    # The MIDI, not transcriptions, so that the two stages need no training upstream.
    set_params(repo, "music_transformer", corpus="ground_truth")
    _run(["dvc", "repro", "render_variants", "prepare_data"], repo, env)
    return repo


def _start(repo: Path, stage: str, env: dict[str, str]) -> subprocess.Popen[str]:
    node = load_graph(repo)[stage]
    for out in node.outs:  # a fresh run each time, not a resumed one
        path = repo / out
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return subprocess.Popen(
        node.cmd,
        cwd=repo,
        env=env,
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _speeds(repo: Path, stages: tuple[str, ...], env: dict[str, str]) -> dict[str, float]:
    processes = {stage: _start(repo, stage, env) for stage in stages}
    speeds = {}
    for stage, process in processes.items():
        log, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{stage} exited {process.returncode}\n{log[-3000:]}")
        speeds[stage] = steps_per_second(log)
    return speeds


def speed(tmp: Path) -> list[dict[str, Any]]:
    """Each training stage alone (torch's default, and with passive waiting), then both
    at once under each setting; ``kept`` is a stage's speed beside the other over its
    speed alone at torch's default, the fastest a stage runs by itself."""
    env = _environment()
    repo = _cpu_profile_repo(tmp / "cpu", env)
    cores = machine_cores()
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    alone = {
        setting: {
            stage: _speeds(repo, (stage,), {**env, **extra})[stage] for stage in TRAINING_STAGES
        }
        for setting, extra in (("default", {}), ("passive", passive))
    }
    together = {
        "torch's default (every core each, OpenMP spinning)": {},
        "every core each, OMP_WAIT_POLICY=PASSIVE": passive,
        f"the runner's share ({share(cores, 2)} of {cores} cores each), passive": {
            **passive,
            "WAVEGEN_THREADS": str(share(cores, 2)),
        },
    }
    rows = [
        {
            "name": f"{stage} alone",
            "steps_per_s": round(alone["default"][stage], 3),
            "passive_steps_per_s": round(alone["passive"][stage], 3),
        }
        for stage in TRAINING_STAGES
    ]
    for label, extra in together.items():
        both = _speeds(repo, TRAINING_STAGES, {**env, **extra})
        rows += [
            {
                "name": f"{stage} beside the other: {label}",
                "steps_per_s": round(both[stage], 3),
                "kept": round(both[stage] / alone["default"][stage], 3),
            }
            for stage in TRAINING_STAGES
        ]
    return rows


def _lock_outs(repo: Path) -> dict[str, dict[str, str]]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        name: {o["path"]: o["md5"] for o in stage["outs"]} for name, stage in lock["stages"].items()
    }


def outputs(tmp: Path, threads: int = 2) -> list[dict[str, Any]]:
    env = _environment()
    repo = tiny_repo_copy(REPO_ROOT, tmp / "tiny", env)
    set_params(repo, "vocoder", families=list(vocoder_families()))
    _run(["dvc", "repro"], repo, {**env, "WAVEGEN_THREADS": "1"})
    lock_text = (repo / "dvc.lock").read_text()
    at_one = _lock_outs(repo)
    rows = []
    for stage in load_graph(repo).names:
        start = time.perf_counter()
        _run(
            ["dvc", "repro", "--force", "--single-item", stage],
            repo,
            {**env, "WAVEGEN_THREADS": str(threads)},
        )
        again = _lock_outs(repo)[stage]
        # Wall-clock measurements differ between any two runs, whatever the threads.
        differ = sorted(
            p
            for p, md5 in again.items()
            if md5 != at_one[stage][p] and not p.endswith("speed.json")
        )
        rows.append(
            {
                "name": f"{stage} at {threads} threads against 1",
                "outputs": len(again),
                "differ": differ,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        (repo / "dvc.lock").write_text(lock_text)
        _run(["dvc", "checkout", "--force", "-q"], repo, env)
    return rows


def run(parts: tuple[str, ...] = ("speed", "outputs")) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = []
        if "speed" in parts:
            rows += speed(tmp)
        if "outputs" in parts:
            rows += outputs(tmp)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_threads")
    parser.add_argument(
        "parts", nargs="*", choices=["speed", "outputs"], default=["speed", "outputs"]
    )
    for row in run(tuple(parser.parse_args().parts)):
        print(row, flush=True)
