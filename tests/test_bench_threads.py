"""benchmarks/bench_threads.py's reading of a training stage's speed from its log."""

from __future__ import annotations

import pytest

from benchmarks.bench_threads import steps_per_second


def test_the_speed_is_the_last_finished_bar_over_its_own_seconds() -> None:
    log = (
        "12:00:01 wavegen train_transcriber: 2 threads\n"
        "train:  50%|#####     | 50/100 [00:20<00:20,  2.5step/s, loss=0.3]\r"
        "train: 100%|##########| 100/100 [00:40<00:00,  2.4step/s, loss=0.2]\n"
        "train: 100%|##########| 30/30 [01:15<00:00,  0.4step/s]\n"
    )
    assert steps_per_second(log) == pytest.approx(30 / 75)
    assert steps_per_second(log.split("train: 100%|##########| 30")[0]) == pytest.approx(2.5)


def test_a_log_without_a_finished_bar_is_refused() -> None:
    with pytest.raises(ValueError, match="no finished training progress bar"):
        steps_per_second("train:  50%|#####     | 50/100 [00:20<00:20]\n")
