"""Kill tests over every stage: `kill -9` at random moments, then `dvc repro` again.

``python -m tools.chaos --work DIR [--kills 3] [--seed 0] [--families ...]``:

1. makes a tiny copy of the repo (3 pieces, a few training steps; the vocoder
   families given, all four by default) and a clone of it at the same commit;
2. runs every stage of the first copy once, undisturbed, one `dvc repro` per stage in
   the graph's order, timing each;
3. in the clone, for each stage in the same order, ``--kills`` times: starts
   ``dvc repro <stage>`` in a session of its own, waits a seeded moment within the
   undisturbed run's duration of that stage, and sends SIGKILL to the whole session
   (DVC and the stage's command). Each kill records what it cut short: whether the
   stage's own command was running, whether it had written an output, and whether it
   had written a checkpoint (a persisted output) to resume from. After each kill,
   `dvc status` may call the stage finished only if every output of it that dvc.lock
   records is on disk with that hash. Then `dvc repro <stage>` runs to the end;
4. compares the two runs: every output hash in dvc.lock (but wall-clock ``speed.json``)
   and every output file's bytes.

It prints a JSON report (per stage: kills, and how many landed while DVC ran, while the
stage's command ran, after it wrote an output, after it wrote a checkpoint; violations;
the kills that left DVC's own ``.dvc/tmp/rwlock`` or ``dvc.lock`` half written, which it
then removes or puts back as before the kill; differences) and writes it to
``DIR/chaos.json``. The suite kills three stages each at the moment it has written its
first output or checkpoint, with the tiny run's lock as the undisturbed reference
(:func:`kill_when_written`, tests/integration/test_chaos.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from pipelines.dvc_repair import remove_cut_rwlock, restore_cut_lock_file
from tools.workspace import set_params, tiny_repo_copy
from wavegen_core.models.vocoders.registry import vocoder_families

REPO_ROOT = Path(__file__).resolve().parents[1]
# Outputs that are wall-clock measurements and differ between any two runs, and the
# page that shows them (its other figures are in summary.json, compared without them).
WALL_CLOCK = ("speed.json",)
SHOWS_WALL_CLOCK = ("reports/evaluate/index.html",)
SUMMARY = "reports/evaluate/summary.json"
REAL_TIME_FACTOR = "rtf"
RESUMED = "resuming from step"
# What the report counts per stage, and in total.
COUNTS = ("while_running", "while_stage_ran", "after_output", "after_checkpoint", "resumed")


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


def lock_outputs(repo: Path, text: str | None = None) -> dict[str, dict[str, str]]:
    """Per stage, each output path and its hash in ``repo``'s dvc.lock (or in ``text``,
    a lock file's content)."""
    if text is None:
        lock_file = repo / "dvc.lock"
        if not lock_file.is_file():
            return {}
        text = lock_file.read_text()
    stages = yaml.safe_load(text).get("stages", {})
    return {
        name: {out["path"]: out.get("md5", "") for out in entry.get("outs", [])}
        for name, entry in stages.items()
    }


@dataclass(frozen=True)
class StageOutputs:
    """What a kill can observe of one stage: the module its command runs, the outputs
    DVC clears before each run, and the ones it keeps (``persist: true``) that a run
    resumes from: its checkpoint files (not metrics, plots or the plots' folders)."""

    module: str
    cleared: tuple[str, ...]
    persisted: tuple[str, ...]


def stage_outputs(repo: Path) -> dict[str, StageOutputs]:
    """Every stage of ``repo``'s dvc.yaml, by name."""
    from dvc.repo import Repo

    found = {}
    with Repo(str(repo)) as dvc_repo:
        for stage in dvc_repo.index.stages:
            words = shlex.split(stage.cmd if isinstance(stage.cmd, str) else stage.cmd[0])
            module = words[words.index("-m") + 1] if "-m" in words else words[0]
            cleared = tuple(str(out.def_path) for out in stage.outs if not out.persist)
            # Persisted metrics and plots are rewritten as training logs, not resumed from.
            kept = [out for out in stage.outs if out.persist and not (out.metric or out.plot)]
            found[stage.name] = StageOutputs(module, cleared, tuple(str(o.def_path) for o in kept))
    return found


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


def rwlock_corrupted(repo: Path) -> bool:
    """Whether the kill cut DVC's own ``.dvc/tmp/rwlock`` short; if so it is removed, as
    the runners do before a retry (:mod:`pipelines.dvc_repair`)."""
    return remove_cut_rwlock(repo)


def lock_file_corrupted(repo: Path, before: str, stage: str | None = None) -> bool:
    """Whether the kill may have cut DVC's rewrite of ``dvc.lock`` short: a file that is
    not a whole lock file, one missing a stage recorded before the kill (a cut between
    two entries still parses), or one where ``stage``'s own entry changed. If so, what
    cannot be trusted is put back from ``before``, as the runners do before a retry
    (:func:`~pipelines.dvc_repair.restore_cut_lock_file`); the killed stage, unrecorded,
    is rerun by DVC."""
    return bool(restore_cut_lock_file(repo, before, stage))


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


@dataclass(frozen=True)
class Kill:
    """What one kill cut short: DVC (``landed``), the stage's own command (``started``),
    after it had written a file of its outputs (``wrote``) or a checkpoint to resume
    from (``checkpointed``); and ``progress``, the last line (or progress bar) the run
    had printed, such as the step or the piece it was at."""

    landed: bool = False
    started: bool = False
    wrote: bool = False
    checkpointed: bool = False
    progress: str = ""


def last_line(log: Path) -> str:
    """The last line of a run's output, a progress bar's last state included."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    lines = [part.strip() for part in re.split(r"[\r\n]+", text) if part.strip()]
    return lines[-1][:200] if lines else ""


def _written_since(path: Path, since: float, partial: bool) -> bool:
    """A file at or under ``path`` modified at or after ``since``; with ``partial``, also
    under the hidden ``.partial`` siblings its stage builds it in (a half-written output,
    :mod:`wavegen_core.files`)."""
    siblings = (
        [
            *path.parent.glob(f".{path.name}.partial-*"),
            *path.parent.glob(f".{path.stem}.*.partial{path.suffix}"),
        ]
        if partial
        else []
    )
    for place in (path, *siblings):
        found = place.rglob("*") if place.is_dir() else [place]
        for file in found:
            try:
                if file.is_file() and file.stat().st_mtime >= since:
                    return True
            except FileNotFoundError:  # renamed into place while we looked
                continue
    return False


def _observe(process: subprocess.Popen, repo: Path, outputs: StageOutputs, since: float) -> Kill:
    """What ``dvc repro`` (``process``) has done of its stage since ``since``."""
    if process.poll() is not None:
        return Kill()
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
    except psutil.Error:  # a process ended while we looked: look again next time
        commands = []
    return Kill(
        landed=True,
        started=any(outputs.module in command for command in commands),
        wrote=any(_written_since(repo / out, since, partial=True) for out in outputs.cleared),
        # A checkpoint counts once whole (renamed into place): one to resume from.
        checkpointed=any(
            not (repo / out).is_dir() and _written_since(repo / out, since, partial=False)
            for out in outputs.persisted
        ),
    )


def _start_repro(repo: Path, stage: str, log: Path) -> subprocess.Popen:
    """``dvc repro <stage>`` in a session of its own (a kill reaches the stage's command),
    its output (DVC's and the stage's) to ``log``."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            ["dvc", "repro", "--single-item", stage],
            cwd=repo,
            env=_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _kill(process: subprocess.Popen, seen: Kill, log: Path) -> Kill:
    """SIGKILL the run's whole session; what it cut short, with the run's last line."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return dataclasses.replace(seen, progress=last_line(log))


def _log_file(repo: Path, stage: str) -> Path:
    folder = repo.parent / f"{repo.name}-kills"
    folder.mkdir(exist_ok=True)
    return folder / f"{stage.replace('@', '-')}-{time.time_ns()}.log"


def kill_during(repo: Path, stage: str, delay: float, outputs: StageOutputs) -> Kill:
    """Start ``dvc repro <stage>`` and SIGKILL its whole session after ``delay`` seconds,
    if it still runs then; what the kill cut short."""
    since, log = time.time(), _log_file(repo, stage)
    process = _start_repro(repo, stage, log)
    try:
        process.wait(timeout=delay)
        return Kill()
    except subprocess.TimeoutExpired:
        return _kill(process, _observe(process, repo, outputs, since), log)


def kill_when_written(
    repo: Path, stage: str, outputs: StageOutputs, timeout: float = 600.0
) -> Kill:
    """Start ``dvc repro <stage>`` and SIGKILL its whole session as soon as the stage's
    command, still running, has written its first checkpoint (a stage that keeps one)
    or else its first output file: the moment a kill leaves the most behind. A stage
    that ends first, or runs past ``timeout`` without writing, is not counted."""
    since, log = time.time(), _log_file(repo, stage)
    process = _start_repro(repo, stage, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _observe(process, repo, outputs, since)
        if not seen.landed:
            process.wait()
            return Kill()
        if seen.started and (seen.checkpointed if outputs.persisted else seen.wrote):
            return _kill(process, seen, log)
        time.sleep(0.02)
    _kill(process, Kill(), log)
    return Kill()


def chaos(
    repo: Path,
    stages: list[str],
    kills: int,
    seed: int = 0,
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Kill each stage ``kills`` times, then run it to the end. A kill comes at a seeded
    moment within the stage's undisturbed duration (``seconds``), or, given none, once
    the stage has written its first checkpoint or output. Per stage, the report counts
    the kills that landed while DVC ran (``while_running``), while the stage's command
    ran, after it had written an output and after it had written a checkpoint, and
    whether the run to the end resumed from a checkpoint."""
    rng = random.Random(seed)
    outputs = stage_outputs(repo)
    report: dict[str, Any] = {
        "stages": {},
        "violations": [],
        "rwlock_corrupted": [],
        "lock_file_corrupted": [],
    }
    for stage in stages:
        cut: list[Kill] = []
        for _ in range(kills):
            lock_before = (repo / "dvc.lock").read_text() if (repo / "dvc.lock").is_file() else ""
            if seconds is None:
                cut.append(kill_when_written(repo, stage, outputs[stage]))
            else:
                # DVC's own start-up takes about a second before the stage's command runs.
                delay = rng.uniform(0.5, max(1.0, seconds[stage]))
                cut.append(kill_during(repo, stage, delay, outputs[stage]))
            if rwlock_corrupted(repo):
                report["rwlock_corrupted"].append(stage)
            if lock_file_corrupted(repo, lock_before, stage):
                report["lock_file_corrupted"].append(stage)
            report["violations"] += [f"{stage}: {v}" for v in finished_but_incomplete(repo, stage)]
        finished = _dvc(repo, "repro", "--single-item", stage)
        report["stages"][stage] = {
            "kills": kills,
            "while_running": sum(kill.landed for kill in cut),
            "while_stage_ran": sum(kill.started for kill in cut),
            "after_output": sum(kill.wrote for kill in cut),
            "after_checkpoint": sum(kill.checkpointed for kill in cut),
            # Each kill: what it met, and the last line the run had printed.
            "each": [dataclasses.asdict(kill) for kill in cut],
            # The training loop's word that the last run went on from a checkpoint.
            "resumed": RESUMED in finished.stdout + finished.stderr,
        }
    return report


def compare_with_lock(reference_lock: str, disturbed: Path, stages: list[str]) -> list[str]:
    """What differs, for ``stages``, between an undisturbed run's lock file (its text)
    and a disturbed workspace: the output hashes of the two locks (but wall-clock
    files), and any output on disk that `dvc status` finds changed from its lock."""
    reference, written = lock_outputs(disturbed, reference_lock), lock_outputs(disturbed)
    differences = []
    for stage in stages:
        for out in sorted(set(reference.get(stage, {})) | set(written.get(stage, {}))):
            if Path(out).name in WALL_CLOCK:
                continue
            if reference.get(stage, {}).get(out) != written.get(stage, {}).get(out):
                differences.append(f"dvc.lock {stage}: {out}")
    status = json.loads(_dvc(disturbed, "status", "--json", *stages).stdout or "{}")
    differences += [f"dvc status {stage}: {change}" for stage, change in status.items()]
    return differences


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
    report = chaos(disturbed, stages, args.kills, args.seed, seconds)
    report["differences"] = compare(reference, disturbed)
    report["seconds"] = {
        "undisturbed": round(undisturbed, 1),
        "with_kills": round(time.monotonic() - started, 1),
    }
    report["totals"] = {
        "stages": len(stages),
        "kills": sum(s["kills"] for s in report["stages"].values()),
        **{count: sum(s[count] for s in report["stages"].values()) for count in COUNTS},
        "violations": len(report["violations"]),
        "rwlock_corrupted": len(report["rwlock_corrupted"]),
        "lock_file_corrupted": len(report["lock_file_corrupted"]),
        "differences": len(report["differences"]),
    }
    (args.work / "chaos.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["totals"]))
    return 0 if not report["violations"] and not report["differences"] else 1


if __name__ == "__main__":
    sys.exit(main())
