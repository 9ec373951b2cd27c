"""Kill tests over every stage: `kill -9` at random moments, then `dvc repro` again.

``python -m tools.chaos --work DIR [--kills 3] [--seed 0] [--families ...]``:

1. makes a tiny copy of the repo (3 pieces, a few training steps; the vocoder
   families given, all four by default) and a clone of it at the same commit;
2. runs every stage of the first copy once, undisturbed, one `dvc repro` per stage in
   the graph's order, timing each;
3. in the clone, for each stage in the same order, ``--kills`` times: starts
   ``dvc repro <stage>`` in a session of its own, waits a seeded moment within the
   undisturbed run's duration of that stage, and sends SIGKILL to the whole session
   (DVC and the stage's command). After each kill, `dvc status` may call the stage
   finished only if every output of it that dvc.lock records is on disk with that
   hash. Then `dvc repro <stage>` runs to the end;
4. compares the two runs: every output hash in dvc.lock (but wall-clock ``speed.json``)
   and every output file's bytes.

It prints a JSON report (kills per stage, kills that landed while the stage ran,
violations, differences) and writes it to ``DIR/chaos.json``. The suite runs
:func:`chaos` on two stages (tests/integration/test_chaos.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tools.workspace import set_params, tiny_repo_copy
from wavegen_core.models.vocoders.registry import vocoder_families

REPO_ROOT = Path(__file__).resolve().parents[1]
# Outputs that are wall-clock measurements and differ between any two runs, and the
# page that shows them (its other figures are in summary.json, compared without them).
WALL_CLOCK = ("speed.json",)
SHOWS_WALL_CLOCK = ("reports/evaluate/index.html",)
SUMMARY = "reports/evaluate/summary.json"
REAL_TIME_FACTOR = "rtf"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def _dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", *args], cwd=repo, env=_env(), capture_output=True, text=True, check=check
    )


def stage_order(repo: Path) -> list[str]:
    """The stages of ``repo``'s dvc.yaml, upstream first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        graph = dvc_repo.index.graph  # edges: stage -> the stage it depends on
        order = list(reversed(list(nx.topological_sort(graph))))
        return [stage.name for stage in order]


def lock_outputs(repo: Path) -> dict[str, dict[str, str]]:
    """Per stage, each output path and its hash in dvc.lock."""
    lock_file = repo / "dvc.lock"
    if not lock_file.is_file():
        return {}
    stages = yaml.safe_load(lock_file.read_text()).get("stages", {})
    return {
        name: {out["path"]: out.get("md5", "") for out in entry.get("outs", [])}
        for name, entry in stages.items()
    }


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _without_wall_clock(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _without_wall_clock(v) for k, v in tree.items() if k != REAL_TIME_FACTOR}
    return tree


def output_files(repo: Path, outputs: dict[str, dict[str, str]]) -> dict[str, str]:
    """Every file of every output (directories walked) with its MD5; the evaluation
    summary by its content without the real-time factors, and no wall-clock file."""
    files = {}
    for paths in outputs.values():
        for out in paths:
            path = repo / out
            found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in found:
                name = str(file.relative_to(repo))
                if not file.is_file() or file.name in WALL_CLOCK or name in SHOWS_WALL_CLOCK:
                    continue
                if name == SUMMARY:
                    content = _without_wall_clock(json.loads(file.read_text()))
                    files[name] = hashlib.md5(json.dumps(content).encode()).hexdigest()
                else:
                    files[name] = _md5(file)
    return files


def reference_run(repo: Path, stages: list[str]) -> dict[str, float]:
    """Run each stage to the end, in order; seconds per stage."""
    seconds = {}
    for stage in stages:
        started = time.monotonic()
        _dvc(repo, "repro", "--single-item", stage)
        seconds[stage] = time.monotonic() - started
    return seconds


def finished_but_incomplete(repo: Path, stage: str) -> list[str]:
    """Outputs of ``stage`` that are missing or differ from dvc.lock while `dvc status`
    calls the stage up to date (what must never happen); empty when it does not."""
    status = json.loads(_dvc(repo, "status", "--json", stage).stdout or "{}")
    if stage in status:
        return []  # stale: DVC will rerun it
    bad = []
    for out, md5 in lock_outputs(repo).get(stage, {}).items():
        path = repo / out
        if not path.exists():
            bad.append(f"{out}: missing")
        elif path.is_file() and md5 and _md5(path) != md5:
            bad.append(f"{out}: differs from dvc.lock")
    return bad


def kill_during(repo: Path, stage: str, delay: float) -> bool:
    """Start ``dvc repro <stage>``, SIGKILL its whole session after ``delay`` seconds;
    True if it was still running then."""
    process = subprocess.Popen(
        ["dvc", "repro", "--single-item", stage],
        cwd=repo,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def chaos(
    repo: Path,
    stages: list[str],
    seconds: dict[str, float],
    kills: int,
    seed: int,
    at: float | None = None,
) -> dict[str, Any]:
    """Kill each stage ``kills`` times, then run it to the end. A kill comes at a seeded
    moment within the stage's undisturbed duration, or at fraction ``at`` of it."""
    rng = random.Random(seed)
    report: dict[str, Any] = {"stages": {}, "violations": []}
    for stage in stages:
        landed = 0
        for _ in range(kills):
            # DVC's own start-up takes about a second before the stage's command runs.
            delay = (
                at * seconds[stage]
                if at is not None
                else rng.uniform(0.5, max(1.0, seconds[stage]))
            )
            landed += kill_during(repo, stage, delay)
            report["violations"] += [f"{stage}: {v}" for v in finished_but_incomplete(repo, stage)]
        _dvc(repo, "repro", "--single-item", stage)
        report["stages"][stage] = {"kills": kills, "while_running": landed}
    return report


def compare(reference: Path, disturbed: Path) -> list[str]:
    """What differs between the two runs: dvc.lock's output hashes and the output files."""
    ref_lock, dis_lock = lock_outputs(reference), lock_outputs(disturbed)
    differences = []
    for stage in sorted(set(ref_lock) | set(dis_lock)):
        for out in sorted(set(ref_lock.get(stage, {})) | set(dis_lock.get(stage, {}))):
            if Path(out).name in WALL_CLOCK or out in (*SHOWS_WALL_CLOCK, SUMMARY):
                continue  # compared by content below
            if ref_lock.get(stage, {}).get(out) != dis_lock.get(stage, {}).get(out):
                differences.append(f"dvc.lock {stage}: {out}")
    ref_files, dis_files = output_files(reference, ref_lock), output_files(disturbed, dis_lock)
    for path in sorted(set(ref_files) | set(dis_files)):
        if ref_files.get(path) != dis_files.get(path):
            differences.append(f"file {path}")
    return differences


def make_copies(work: Path, families: list[str]) -> tuple[Path, Path]:
    """A tiny copy of this checkout and a clone of it at the same commit (so that the
    evaluation page, which names the revision, can match)."""
    env = _env()
    reference = tiny_repo_copy(REPO_ROOT, work / "reference", env)
    set_params(reference, "vocoder", families=list(families))
    identity = ["-c", "user.name=chaos", "-c", "user.email=chaos@localhost"]
    changed = subprocess.run(
        ["git", "status", "--porcelain"], cwd=reference, env=env, capture_output=True, text=True
    ).stdout
    if changed.strip():
        subprocess.run(
            ["git", *identity, "commit", "-qam", "families"], cwd=reference, env=env, check=True
        )
    disturbed = work / "disturbed"
    subprocess.run(["git", "clone", "-q", str(reference), str(disturbed)], env=env, check=True)
    return reference, disturbed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="*", default=vocoder_families())
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    reference, disturbed = make_copies(args.work.resolve(), args.families)
    stages = stage_order(reference)
    started = time.monotonic()
    seconds = reference_run(reference, stages)
    undisturbed = time.monotonic() - started
    started = time.monotonic()
    report = chaos(disturbed, stages, seconds, args.kills, args.seed)
    report["differences"] = compare(reference, disturbed)
    report["seconds"] = {
        "undisturbed": round(undisturbed, 1),
        "with_kills": round(time.monotonic() - started, 1),
    }
    report["totals"] = {
        "stages": len(stages),
        "kills": sum(s["kills"] for s in report["stages"].values()),
        "while_running": sum(s["while_running"] for s in report["stages"].values()),
        "violations": len(report["violations"]),
        "differences": len(report["differences"]),
    }
    (args.work / "chaos.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["totals"]))
    return 0 if not report["violations"] and not report["differences"] else 1


if __name__ == "__main__":
    sys.exit(main())
