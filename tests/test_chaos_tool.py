"""tools/chaos.py's own parts that need no pipeline run."""

from __future__ import annotations

from pipelines.dvc_repair import RWLOCK
from tools.chaos import last_line, lock_file_corrupted, rwlock_corrupted


def test_a_rwlock_cut_short_by_a_kill_is_found_and_removed(tmp_path) -> None:
    assert not rwlock_corrupted(tmp_path)  # none at all
    lock = tmp_path / RWLOCK
    lock.parent.mkdir(parents=True)
    lock.write_text('{"read": {}, "write": {}}')
    assert not rwlock_corrupted(tmp_path) and lock.is_file()
    lock.write_text('{"read": {"data/prepared": [{"pid": 12')  # what a kill left
    assert rwlock_corrupted(tmp_path) and not lock.exists()


def test_the_last_line_is_a_progress_bars_last_state(tmp_path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"Running stage 'x':\n> python -m stages.x\nx:   0%| 0/3\rx:  33%| 1/3\r")
    assert last_line(log) == "x:  33%| 1/3"
    assert last_line(tmp_path / "none.log") == ""


def test_a_lock_file_cut_short_by_a_kill_is_found_and_put_back(tmp_path) -> None:
    before = "schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n    outs: []\n"
    lock = tmp_path / "dvc.lock"
    assert not lock_file_corrupted(tmp_path, before)  # none yet
    lock.write_text(before + "  b:\n    cmd: python b.py\n")
    assert not lock_file_corrupted(tmp_path, before)  # whole: b was recorded
    lock.write_text(before + "  b:\n    deps:\n    - path: b.py\n")  # cut before b's cmd
    assert lock_file_corrupted(tmp_path, before) and lock.read_text() == before
    lock.write_text(before + "  b:\n    cmd: 'python b")  # not even YAML
    assert lock_file_corrupted(tmp_path, before) and lock.read_text() == before
    # Cut between two entries: it parses, but a stage recorded before the kill is gone.
    two = before + "  b:\n    cmd: python b.py\n"
    lock.write_text("schema: '2.0'\nstages:\n  b:\n    cmd: python b.py\n")
    assert lock_file_corrupted(tmp_path, two) and lock.read_text() == two
