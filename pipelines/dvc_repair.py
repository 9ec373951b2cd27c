"""Putting DVC's own files right after a kill, before a stage is tried again.

DVC rewrites two files in place, and a kill at the wrong moment cuts them short:

* ``.dvc/tmp/rwlock`` (which process reads and writes which path): every later `dvc`
  command then stops with "Unable to read RWLock-file";
* ``dvc.lock`` (what each stage last produced), rewritten whole after a stage's outputs
  are committed: DVC then stops with "validation failed", or, cut between two entries,
  silently forgets the stages after the cut.

A file that another `dvc` process in the same checkout is still writing looks the same
as one a kill cut. So each file is read only under the guard DVC itself writes it
under (``.dvc/tmp/rwlock.lock`` for the first, the repository lock ``.dvc/tmp/lock``
for the second), waiting while another process holds it: a file that is still broken
once the guard is ours was left so by a process that no longer runs. The guards are
``fcntl`` locks, which the kernel releases when their holder dies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

RWLOCK = ".dvc/tmp/rwlock"
RWLOCK_GUARD = ".dvc/tmp/rwlock.lock"
REPO_GUARD = ".dvc/tmp/lock"
LOCK_FILE = "dvc.lock"


def _guard(repo: Path, name: str) -> Any:
    """DVC's own lock on ``name``, waiting for whoever holds it."""
    from dvc.lock import make_lock

    (repo / ".dvc/tmp").mkdir(parents=True, exist_ok=True)
    return make_lock(str(repo / name), tmp_dir=str(repo / ".dvc/tmp"), wait=True)


def remove_cut_rwlock(repo: Path) -> bool:
    """Remove ``.dvc/tmp/rwlock`` if a kill left it unreadable (what DVC's message asks
    for); True when it did. Entries of processes that died whole are DVC's own
    business: it drops them itself."""
    path = repo / RWLOCK
    if not path.is_file():
        return False
    with _guard(repo, RWLOCK_GUARD):
        try:
            json.loads(path.read_text() or "{}")
        except json.JSONDecodeError:
            path.unlink()
            return True
    return False


def _stages(text: str) -> dict[str, Any] | None:
    """The stage entries of a lock file's text, or None when it is not YAML with a
    ``stages`` mapping."""
    try:
        stages = (yaml.safe_load(text) or {}).get("stages", {})
    except (yaml.YAMLError, AttributeError):
        return None
    return stages if isinstance(stages, dict) else None


def _whole(entry: Any) -> bool:
    """Whether a lock entry passes DVC's own schema: a cut can end inside an entry at a
    line that still parses (a dep's ``size:`` without its number), which DVC then
    refuses in every command."""
    import voluptuous
    from dvc.schema import COMPILED_LOCK_FILE_STAGE_SCHEMA

    try:
        COMPILED_LOCK_FILE_STAGE_SCHEMA(entry)
    except voluptuous.Invalid:
        return False
    return True


def restore_cut_lock_file(repo: Path, before: str, stage: str | None = None) -> list[str]:
    """Put back what a kill cut out of ``dvc.lock``, from ``before`` (its text before
    the stage ran); return the stages whose entries were put back or dropped ([] when
    nothing was cut).

    A file that is not YAML is replaced by ``before``. One cut short still parses when
    the cut falls between two entries, or inside one at a line that parses. Such a file
    has lost its tail, so what cannot be trusted is put back from ``before`` (or dropped
    where ``before`` lacks it):
    - the entries DVC's schema refuses (a dep's ``size:`` without its number);
    - the entries that ``before`` recorded and the file lacks;
    - then the file's last entry, where it differs from ``before``: it may have lost its
      ``outs`` and still pass;
    - and the entry of ``stage``, the stage that was killed, wherever it differs from
      ``before``: DVC may have been writing it when the kill came.
    An entry put back may be older than the outputs in the workspace; DVC then sees them
    differ and reruns the stage, never the other way.
    """
    path = repo / LOCK_FILE
    earlier = _stages(before) if before else {}
    if not path.is_file() or not earlier:
        return []
    with _guard(repo, REPO_GUARD):
        now = _stages(path.read_text())
        if now is None:
            path.write_text(before)
            return sorted(earlier)
        suspect = {name for name, entry in now.items() if not _whole(entry)}
        missing = {name for name in earlier if name not in now}
        last = list(now)[-1] if now else None
        if missing and last is not None and now[last] != earlier.get(last):
            suspect.add(last)
        if stage in now and now[stage] != earlier.get(stage):
            suspect.add(stage)
        if not missing and not suspect:
            return []
        kept = {name: entry for name, entry in now.items() if name not in suspect}
        merged = yaml.safe_load(before)
        merged["stages"] = {**earlier, **kept}
        from dvc.utils.serialize import dump_yaml

        dump_yaml(str(path), merged)
        return sorted(missing | suspect)


def repair_after_kill(repo: Path, lock_before: str, stage: str | None = None) -> list[str]:
    """Both repairs; what was done, in words (empty when nothing was cut)."""
    done = []
    if remove_cut_rwlock(repo):
        done.append(f"removed the cut {RWLOCK}")
    restored = restore_cut_lock_file(repo, lock_before, stage)
    if restored:
        done.append(f"repaired the {LOCK_FILE} entries of {', '.join(restored)}")
    return done
