"""The runners' repair of DVC's own files after a kill: a cut file is put right, one that
another `dvc` process is still writing is left to it."""

from __future__ import annotations

import subprocess
import sys
import time

import yaml

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
    assert done == [f"removed the cut {RWLOCK}", "repaired the dvc.lock entries of b"]
    assert not (tmp_path / RWLOCK).exists()
    assert (tmp_path / "dvc.lock").read_text() == before
    assert repair_after_kill(tmp_path, before) == []  # whole now: nothing to do


def test_an_entry_cut_inside_is_put_back_though_the_file_still_parses(tmp_path) -> None:
    """Seen in a chaos run: a kill while DVC rewrote the lock ended the file inside
    one entry's deps at a line that still parses (``size:`` without its number). DVC's
    schema refuses it in every command; the entry before the kill comes back, and an
    entry cut short that was not there before goes."""
    dep = "    deps:\n    - path: a.py\n      hash: md5\n      md5: 0123\n      size: 20\n"
    before = f"schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n{dep}"
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    cut = (
        before.replace("size: 20", "size:")
        + "  c:\n    cmd: python c.py\n    deps:\n    - path: c\n      size:"
    )
    (tmp_path / "dvc.lock").write_text(cut)
    assert repair_after_kill(tmp_path, before) == ["repaired the dvc.lock entries of a, c"]
    assert yaml.safe_load((tmp_path / "dvc.lock").read_text()) == yaml.safe_load(before)


def test_a_last_entry_cut_before_its_outs_is_not_trusted(tmp_path) -> None:
    """Seen in a chaos run: the cut fell just before an entry's ``outs:``. The entry
    still passes DVC's schema (``outs`` is optional), but later entries are gone, so
    the file lost its tail and its last entry comes back from before the kill."""
    entry = "    cmd: python {0}.py\n    outs:\n    - path: {0}.out\n      md5: abc{1}\n"
    before = "schema: '2.0'\nstages:\n" + "".join(
        f"  {name}:\n" + entry.format(name, index) for index, name in enumerate("abc")
    )
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    (tmp_path / "dvc.lock").write_text(before.split("    outs:\n    - path: b.out")[0])
    assert repair_after_kill(tmp_path, before) == ["repaired the dvc.lock entries of b, c"]
    assert yaml.safe_load((tmp_path / "dvc.lock").read_text()) == yaml.safe_load(before)


def test_the_killed_stages_entry_is_put_back_where_it_changed(tmp_path) -> None:
    """A stage recorded last can be cut before its outs with nothing after it to miss:
    the entry of the stage that was killed is not trusted where it differs from before."""
    before = "schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n"
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    cut = before + "  b:\n    cmd: python b.py\n"  # b's outs never written
    (tmp_path / "dvc.lock").write_text(cut)
    assert repair_after_kill(tmp_path, before, "a") == []  # a's entry is as it was
    assert repair_after_kill(tmp_path, before, "b") == ["repaired the dvc.lock entries of b"]
    assert yaml.safe_load((tmp_path / "dvc.lock").read_text()) == yaml.safe_load(before)
