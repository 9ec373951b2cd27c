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
