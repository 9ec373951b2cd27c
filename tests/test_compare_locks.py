"""tools/compare_locks.py: the outputs two dvc.lock files agree on, per stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.compare_locks import compare, main


def _out(path: str, md5: str) -> dict[str, str]:
    return {"path": path, "hash": "md5", "md5": md5}


LOCK_A = {
    "schema": "2.0",
    "stages": {
        "prepare_data": {
            "cmd": "python -m stages.prepare_data",
            "deps": [_out("data/raw", "d0.dir")],
            "outs": [_out("data/prepared", "a1.dir"), _out("reports/prepare_data", "a2.dir")],
        },
        "train@gan": {"outs": [_out("models/gan.pt", "a3"), _out("reports/gan.json", "a4")]},
        "old_stage": {"outs": [_out("old.txt", "a5")]},
    },
}
LOCK_B = {
    "schema": "2.0",
    "stages": {
        "prepare_data": {
            "cmd": "python -m stages.prepare_data",
            "deps": [_out("data/raw", "changed-dep.dir")],
            "outs": [_out("data/prepared", "a1.dir"), _out("reports/prepare_data", "a2.dir")],
        },
        "train@gan": {"outs": [_out("models/gan.pt", "b3"), _out("reports/gan.json", "a4")]},
        "new_stage": {"outs": [_out("new.txt", "b6")]},
    },
}


def _counts(result: dict[str, dict[str, list[str]]], stage: str) -> tuple[int, ...]:
    return tuple(len(paths) for paths in result[stage].values())


def test_outputs_are_sorted_per_stage_into_identical_different_and_missing() -> None:
    result = compare(LOCK_A, LOCK_B)
    # (identical, different, only in A, only in B); a changed dep is not an output.
    assert _counts(result, "prepare_data") == (2, 0, 0, 0)
    assert _counts(result, "train@gan") == (1, 1, 0, 0)
    assert result["train@gan"]["different"] == ["models/gan.pt"]
    assert _counts(result, "old_stage") == (0, 0, 1, 0)
    assert _counts(result, "new_stage") == (0, 0, 0, 1)


def test_the_command_reads_two_lock_files_and_prints_the_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.lock", tmp_path / "b.lock"
    a.write_text(yaml.safe_dump(LOCK_A))
    b.write_text(yaml.safe_dump(LOCK_B))
    main([str(a), str(b)])
    lines = capsys.readouterr().out.splitlines()
    assert "train@gan: 1 identical, 1 different, 0 only in A, 0 only in B" in lines
    assert "    different: models/gan.pt" in lines
    assert lines[-1] == "total: 3 identical, 1 different, 1 only in A, 1 only in B"
