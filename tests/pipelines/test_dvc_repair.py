"""The runners' repair of DVC's own files after a kill: a cut file is put right, one that
another `dvc` process is still writing is left to it."""

from __future__ import annotations

import subprocess
import sys
import time

from pipelines.dvc_repair import RWLOCK, RWLOCK_GUARD, remove_cut_rwlock, repair_after_kill

# A process that writes the rwlock as DVC does, under DVC's guard: half of it first,
# the rest a second later.
WRITER = f"""
import sys, time
from dvc.lock import make_lock
repo = sys.argv[1]
with make_lock(repo + "/{RWLOCK_GUARD}", tmp_dir=repo + "/.dvc/tmp"):
    open(repo + "/{RWLOCK}", "w").write('{{"read": {{"data": [{{"pid": 12')
    print("writing", flush=True)
    time.sleep(1.0)
    open(repo + "/{RWLOCK}", "w").write('{{"read": {{}}, "write": {{}}}}')
"""


def test_a_rwlock_another_process_is_writing_is_waited_for_not_removed(tmp_path) -> None:
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    start = time.monotonic()
    assert not remove_cut_rwlock(tmp_path)  # half written, but its writer is alive
    assert time.monotonic() - start > 0.5  # it waited for the guard
    assert (tmp_path / RWLOCK).read_text() == '{"read": {}, "write": {}}'
    assert writer.wait() == 0


def test_a_cut_rwlock_and_a_cut_lock_file_are_put_right(tmp_path) -> None:
    before = "schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n  b:\n    cmd: python b.py\n"
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    (tmp_path / RWLOCK).write_text('{"read": {"data": [{"pid": 12')
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n")
    done = repair_after_kill(tmp_path, before)
    assert done == [f"removed the cut {RWLOCK}", "put back the dvc.lock entries of b"]
    assert not (tmp_path / RWLOCK).exists()
    assert (tmp_path / "dvc.lock").read_text() == before
    assert repair_after_kill(tmp_path, before) == []  # whole now: nothing to do
