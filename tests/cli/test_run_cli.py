"""`wavegen run`: its options reach the flow; a bad --gpu-slots is refused by name."""

from __future__ import annotations

import pytest

import pipelines.flow
from pipelines.dvc_runner import StageOutcome
from wavegen_core.cli import main


def test_gpu_slots_and_targets_reach_the_flow(monkeypatch, capsys) -> None:
    seen = {}

    def fake_pipeline(**kwargs):
        seen.update(kwargs)
        return [StageOutcome("train_vocoder@gan", "ran", 12.5)]

    monkeypatch.setattr(pipelines.flow, "pipeline", fake_pipeline)
    assert main(["run", "--gpu-slots", "4", "--repo", "/r", "synthesize@gan"]) == 0
    assert seen["gpu_slots"] == 4 and seen["targets"] == ["synthesize@gan"]
    assert seen["repo"] == "/r"
    assert "train_vocoder@gan" in capsys.readouterr().out
    main(["run"])
    assert seen["gpu_slots"] == 1  # one GPU stage at a time unless told otherwise


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_a_gpu_slot_count_below_one_is_refused(bad, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--gpu-slots", bad])
    assert exit_info.value.code == 2
    assert "--gpu-slots" in capsys.readouterr().err
