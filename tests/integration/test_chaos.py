"""`kill -9` of a running stage under `dvc repro`, then `dvc repro` again, ends where an
undisturbed run does: two non-training stages (prepare_data, render_variants) and one
training stage (train_transcriber), each killed once it has written its first output,
or its first checkpoint, with the shared tiny run as the undisturbed one. Every stage,
several kills each at random moments: ``python -m tools.chaos``."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT, TinyRun
from tools.chaos import chaos, compare_with_lock
from tools.workspace import tiny_repo_copy

pytestmark = pytest.mark.slow

STAGES = ["prepare_data", "render_variants", "train_transcriber"]


def test_killed_stages_rerun_to_the_undisturbed_hashes_and_files(
    tmp_path, venv_env, tiny_run: TinyRun
) -> None:
    disturbed = tiny_repo_copy(REPO_ROOT, tmp_path / "disturbed", venv_env)

    report = chaos(disturbed, STAGES, kills=1)

    assert report["violations"] == []
    # The kills cut the stages' own commands short: the corpus with its first files
    # written, the training after its first checkpoint (the next run resumed from it).
    stages = report["stages"]
    assert stages["prepare_data"]["while_stage_ran"] == stages["prepare_data"]["after_output"] == 1
    assert stages["train_transcriber"]["while_stage_ran"] == 1, report
    assert stages["train_transcriber"]["after_checkpoint"] == 1, report
    assert stages["train_transcriber"]["resumed"], report
    # Each kill says where the run was: the last line (or progress bar) it printed.
    assert all(kill["progress"] for stage in STAGES[::2] for kill in stages[stage]["each"])
    assert compare_with_lock(tiny_run.lock, disturbed, STAGES) == []
