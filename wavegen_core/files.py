"""Atomic file and directory writes.

Every output of a stage is written under a temporary name in the same directory and
renamed into place, so a killed process never leaves a file (or directory) that looks
complete but is not (the stage contract, rule 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    For writers that want a file name rather than a handle (``soundfile.write``,
    ``torch.save``, ``PrettyMIDI.write``). The temporary keeps the suffix of ``path``
    so that writers which pick a format from the suffix still do.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); outputs get the usual mode under the umask.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; rename it onto ``path`` when the block ends."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_open(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")


def staging_dir(target: str | os.PathLike[str], key: str) -> Path:
    """The directory where ``target`` is built before :func:`replace_dir` swaps it in.

    It lies beside ``target`` and is named by ``key``, a hash of everything that
    changes the output: a killed run that restarts with the same key finds its
    finished parts there and resumes (the temporaries it was writing when killed are
    removed); staging directories of other keys are stale and removed.
    """
    target = Path(target)
    prefix = f".{target.name}.partial-"
    staging = target.with_name(prefix + key)
    for stale in target.parent.glob(prefix + "*"):
        if stale != staging:
            shutil.rmtree(stale)
    staging.mkdir(parents=True, exist_ok=True)
    # What a killed writer left half written inside (its temporaries) is not a part.
    for leftover in sorted(staging.rglob(".*.partial*"), reverse=True):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)
    return staging


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished ``staging`` directory onto ``target``.

    A directory cannot be replaced by one ``rename`` when the target is not empty, so
    the old target is first moved aside. A kill between the two renames leaves no
    ``target`` at all (never a half-written one), and the stage is simply rerun.
    """
    staging, target = Path(staging), Path(target)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    _fsync_dir(target.parent)
    if old.exists():
        shutil.rmtree(old)
