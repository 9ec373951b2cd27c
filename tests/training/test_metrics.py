"""Curves are cut back to the resumed step, so a resumed run never repeats a step."""

from __future__ import annotations

import json

from wavegen_core.training.metrics import MetricsLog, read_curves, truncate_curves


def _log_steps(directory, steps) -> None:
    metrics = MetricsLog(directory, after_step=min(steps) - 1)
    for step in steps:
        metrics.log(step, {"train/loss": 1.0 / step, "eval/loss": 2.0 / step})


def test_rows_after_the_resumed_step_are_dropped(tmp_path) -> None:
    _log_steps(tmp_path, range(1, 14))
    MetricsLog(tmp_path, after_step=10).log(11, {"train/loss": 0.5})

    steps, values = read_curves(tmp_path)["train/loss"]
    assert steps == list(range(1, 12))
    assert values[-1] == 0.5
    assert read_curves(tmp_path)["eval/loss"][0] == list(range(1, 11))


def test_a_row_cut_short_by_a_kill_is_dropped(tmp_path) -> None:
    _log_steps(tmp_path, range(1, 4))
    tsv = tmp_path / "plots" / "metrics" / "train" / "loss.tsv"
    tsv.write_text(tsv.read_text() + "4\t0.2")

    truncate_curves(tmp_path, after_step=10)

    assert read_curves(tmp_path)["train/loss"][0] == [1, 2, 3]
    assert tsv.read_text().endswith("\n")


def test_a_fresh_run_starts_with_no_curves(tmp_path) -> None:
    _log_steps(tmp_path, range(1, 6))
    MetricsLog(tmp_path, after_step=0)

    assert read_curves(tmp_path) == {}


def test_summary_has_the_step_and_latest_values(tmp_path) -> None:
    metrics = MetricsLog(tmp_path, after_step=3, latest={"eval/loss": 0.7})
    metrics.log(4, {"train/loss": 0.25})
    metrics.write_summary(4)

    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary == {"step": 4, "eval/loss": 0.7, "train/loss": 0.25}
