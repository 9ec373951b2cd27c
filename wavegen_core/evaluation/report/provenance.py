"""What a run was: its params against the nearest profile, its commit, its models' hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from wavegen_core import profiles
from wavegen_core.params import Params


def dotted_keys(prefix: str, value: Any) -> dict[str, Any]:
    """The leaves of a nested dict under dotted keys (``vocoder.families``)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, sub in value.items():
            flat.update(dotted_keys(f"{prefix}{key}.", sub))
        return flat
    return {prefix.rstrip("."): value}


def params_against_profiles(params: Params) -> tuple[str, dict[str, tuple[Any, Any]]]:
    """The profile ``params`` is closest to, and each key that differs from it (value,
    the profile's value)."""
    current = dotted_keys("", params.model_dump(mode="json"))
    best: tuple[str, dict[str, tuple[Any, Any]]] | None = None
    for name in profiles.available():
        reference = dotted_keys("", profiles.params_under_profile(name).model_dump(mode="json"))
        differs = {
            key: (current.get(key), reference.get(key))
            for key in sorted(set(current) | set(reference))
            if current.get(key) != reference.get(key)
        }
        if best is None or len(differs) < len(best[1]):
            best = (name, differs)
    assert best is not None
    return best


def git_revision(where: Path) -> str:
    """The checkout's commit (with ``+changes`` when the work tree differs), or why not."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return commit + (" +changes" if dirty else "")


def model_files(model: Path) -> list[Path]:
    """The files of a model: the file itself, or a folder's files (hidden ones left out)."""
    if model.is_dir():
        return sorted(p for p in model.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [model] if model.is_file() else []


def md5_of(path: Path) -> str:
    """The file's MD5, the hash DVC records for it."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
