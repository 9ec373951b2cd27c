"""The `node` deployment end to end: a real Prefect server and worker run one training
stage of a fresh clone of this repository through torchrun.

    python -m tools.node_check                        # 2 gloo processes on the CPU
    python -m tools.node_check --nproc auto --target train_vocoder@gan   # a GPU node

It starts `prefect server start` (its own home under ``--work``), creates the `gpu`
process pool, deploys `node` from prefect.yaml, starts `prefect worker`, and runs the
deployment on the clone with ``<target's section>.train.nproc`` overridden, a few steps
(``--steps``) on a corpus of 8 pieces whatever the profile, and no sharing (the clone
has no remote). It checks that the run completed, that the stage
restarted under torchrun with the processes asked for, and that every rank reported;
it prints the worker's log and exits 1 otherwise. About a minute on 2 CPU cores for
the default target (prepare_data, then train_vqvae@1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.server import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]
# The params section whose train.nproc each target's stage reads.
SECTIONS = {
    "train_transcriber": "transcription",
    "train_music_transformer": "music_transformer",
    "train_prior": "vqvae.prior",
}


def section_of(target: str) -> str:
    if target in SECTIONS:
        return SECTIONS[target]
    stage, _, key = target.partition("@")
    if stage == "train_vocoder":
        return f"vocoder.{key}"
    if stage == "train_vqvae":
        return f"vqvae.tiers.{key}"
    raise ValueError(f"{target} is not a training stage")


def check(work: Path, target: str, nproc: str, steps: int) -> int:
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    train = f"{section_of(target)}.train"
    override = f"{train}.nproc={nproc}"
    # A check, not a run: a few steps on a small corpus, whatever the profile.
    overrides = [override, "data.max_pieces=8"] + [
        f"{train}.{key}={steps}" for key in ("steps", "checkpoint_every", "eval_every", "log_every")
    ]
    with local_server(work / "prefect") as server:
        env |= server

        def prefect(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["prefect", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
            )

        prefect("work-pool", "create", "gpu", "--type", "process")
        prefect("--no-prompt", "deploy", "--name", "node")
        log_path = work / "worker.log"
        with open(log_path, "w") as log:
            worker = subprocess.Popen(
                ["prefect", "worker", "start", "--pool", "gpu", "--limit", "1"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            started = time.perf_counter()
            try:
                run = prefect(
                    "deployment", "run", "wavegen/node",
                    "--param", f"repo={clone}", "--param", "share=false",
                    "--param", f'targets=["{target}"]',
                    "--param", f"overrides={json.dumps(overrides)}",
                    "--watch", "--watch-timeout", "3600",
                )  # fmt: skip
            finally:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        elapsed = time.perf_counter() - started
    text = log_path.read_text()
    launched = re.search(r"starting (\d+) processes with torchrun", text)
    ranks = set(re.findall(r"rank (\d+) of (\d+)", text))
    size = int(launched.group(1)) if launched else 0
    failures = []
    if "Completed" not in run.stdout:
        failures.append("the flow run did not complete")
    if not launched:
        failures.append("the stage did not restart under torchrun")
    elif ranks != {(str(rank), str(size)) for rank in range(size)}:
        failures.append(f"ranks reported: {sorted(ranks)}, expected 0..{size - 1} of {size}")
    if failures:
        print(text[-6000:], run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(f"node deployment: {target} ran on {size} processes through torchrun ({override}), "
          f"flow completed in {elapsed:.0f} s")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="train_vqvae@1")
    parser.add_argument("--nproc", default="2", help="an integer, or auto (one per GPU)")
    parser.add_argument("--steps", type=int, default=20, help="training steps of the check")
    parser.add_argument("--work", type=Path, help="keep the clone and logs here")
    args = parser.parse_args(argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        return check(args.work, args.target, args.nproc, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        return check(Path(tmp), args.target, args.nproc, args.steps)


if __name__ == "__main__":
    sys.exit(main())
