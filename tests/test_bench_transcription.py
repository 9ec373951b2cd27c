"""benchmarks/bench_transcription.py's ablation: a finished row is read back only when it
was made with the same steps, params, threads and commit; otherwise it is made afresh."""

from __future__ import annotations

import json

from benchmarks.bench_transcription import MADE_WITH, made_with, reusable


def test_a_finished_row_is_reused_only_when_made_with_the_same_steps_params_and_code(
    tmp_path,
) -> None:
    row = tmp_path / "baseline"
    (row / "evaluate").mkdir(parents=True)
    made = made_with(100, "steps: 100\n", "0123456789ab")
    assert not reusable(row, made)  # no metrics yet
    (row / "evaluate/metrics.json").write_text("{}")
    assert not reusable(row, made)  # metrics, but nothing says what made them
    (row / MADE_WITH).write_text(json.dumps(made))
    assert reusable(row, made)
    assert not reusable(row, made_with(3000, "steps: 100\n", "0123456789ab"))
    assert not reusable(row, made_with(100, "steps: 3000\n", "0123456789ab"))
    assert not reusable(row, made_with(100, "steps: 100\n", "ba9876543210"))
    assert not reusable(row, made_with(100, "steps: 100\n", "0123456789ab", threads=2))
    # A work tree with changes cannot vouch for the code that made a row.
    changed = made_with(100, "steps: 100\n", "0123456789ab +changes")
    (row / MADE_WITH).write_text(json.dumps(changed))
    assert not reusable(row, changed)
