"""Atomic writes: the file appears whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from wavegen_core.files import atomic_path, replace_dir, staging_dir, write_json


def test_a_failed_write_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_mode_the_umask_allows(tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644


def test_staging_directories_of_other_keys_are_removed(tmp_path) -> None:
    target = tmp_path / "corpus"
    old = staging_dir(target, "old")
    (old / "x").write_text("stale")
    new = staging_dir(target, "new")
    assert not old.exists() and new.is_dir()
    (new / "manifest.json").write_text("{}")
    replace_dir(new, target)
    assert (target / "manifest.json").is_file() and not new.exists()


def test_a_resumed_staging_directory_keeps_finished_parts_not_a_killed_writers_temporaries(
    tmp_path,
) -> None:
    """A kill during a write leaves the writer's temporary (atomic_path's) in the staging
    directory; the resumed run must not carry it into the output."""
    target = tmp_path / "corpus"
    staging = staging_dir(target, "key")
    (staging / "audio").mkdir()
    (staging / "audio" / "done.wav").write_bytes(b"finished")
    with pytest.raises(KeyboardInterrupt), atomic_path(staging / "audio" / "cut.wav") as tmp:
        tmp.write_bytes(b"half")
        # A kill -9 runs no cleanup: leave the temporary as the killed writer would.
        os.link(tmp, tmp.with_name(".cut.killed.partial.wav"))
        raise KeyboardInterrupt
    again = staging_dir(target, "key")
    assert again == staging
    assert sorted(p.name for p in (staging / "audio").iterdir()) == ["done.wav"]
