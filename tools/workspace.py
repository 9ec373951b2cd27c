"""Throwaway copies of this repository: the working tree as a fresh clone would have it,
params edited key by key, and the tiny copy every whole-pipeline run starts from (the
integration tests, ``tools.chaos``, ``tools.screenshot_ui``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from wavegen_core.models.vocoders.registry import vocoder_families


def copy_worktree(source: Path, target: Path) -> None:
    """Copy what git would hand a fresh clone (tracked and untracked-but-not-ignored files)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = source / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


def set_params(repo: Path, section: str, **values: object) -> None:
    """Update keys of one params.yaml section (dotted for nesting: ``train.steps``)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        target = params[section]
        for parent in parents:
            target = target[parent]
        target[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_data_params(repo: Path, **data: object) -> None:
    set_params(repo, "data", **data)


def _git(repo: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )


def tiny_repo_copy(source: Path, target: Path, env: dict[str, str]) -> Path:
    """A git repo holding the working tree at a 3-piece corpus and 4-step trainings,
    with no lock file yet."""
    copy_worktree(source, target)
    (target / "dvc.lock").unlink(missing_ok=True)
    set_data_params(target, max_pieces=3, num_workers=2)
    # A few real training steps: enough to exercise checkpoints, metrics and plots.
    steps = {"steps": 4, "checkpoint_every": 2, "log_every": 1, "eval_every": 2}
    set_params(target, "transcription", **{f"train.{k}": v for k, v in steps.items()})
    # basic-pitch's side-by-side score has a test of its own (tests/stages).
    set_params(target, "transcription", compare_basic_pitch=False)
    symbolic = {
        "train.steps": 4,
        "train.checkpoint_every": 2,
        "train.log_every": 1,
        "train.eval_every": 2,
        "warmup_steps": 2,
        "compose.seconds": 4.0,
        "compose.primer_seconds": 2.0,
    }
    set_params(target, "music_transformer", **symbolic)
    # No vocoder family: the vocoder stages cost every whole-pipeline run a minute;
    # tests/integration turns the flow's and DDSP's on, tests/stages trains them all.
    vocoder: dict[str, object] = {"families": [], "mel.families": []}
    for family in vocoder_families():
        vocoder.update({f"{family}.train.{k}": v for k, v in steps.items()})
        vocoder[f"{family}.train.eval_every"] = 4
    # The judge's scores have a test of their own (tests/stages).
    synthesis = {"test_pieces": 1, "composed_pieces": 1, "max_seconds": 0.25, "judge": False}
    vocoder.update({f"synthesize.{k}": v for k, v in synthesis.items()})
    set_params(target, "vocoder", **vocoder)
    # One short etude beside the validation piece's rendering: the dev set exists.
    set_params(target, "evaluation", **{"dev.etudes": 1, "dev.etude_seconds": 5.0})
    # The learnt hierarchy at a few steps, one short sample and one test second.
    hierarchy: dict[str, object] = {
        f"tiers.{tier}.train.{k}": v for tier in ("1", "2") for k, v in steps.items()
    }
    hierarchy.update({f"prior.train.{k}": v for k, v in steps.items()})
    sampling = {"samples": 1, "seconds": 0.25, "reconstruct_pieces": 1, "reconstruct_seconds": 1.0}
    hierarchy.update({f"sample.{k}": v for k, v in sampling.items()})
    set_params(target, "vqvae", **hierarchy)
    _git(target, env, "init", "-q")
    _git(target, env, "add", "-A")
    _git(target, env, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    return target
