"""`kill -9` of a running stage under `dvc repro`, then `dvc repro` again, ends where an
undisturbed run does: one non-training stage (prepare_data) and one training stage
(train_transcriber). Every stage, several kills each: ``python -m tools.chaos``."""

from __future__ import annotations

import pytest

from tools.chaos import chaos, compare, make_copies, reference_run

pytestmark = pytest.mark.slow

STAGES = ["prepare_data", "render_variants", "train_transcriber"]


def test_killed_stages_rerun_to_the_undisturbed_hashes_and_files(tmp_path) -> None:
    reference, disturbed = make_copies(tmp_path, [])
    seconds = reference_run(reference, STAGES)

    # Each stage killed once at 60 % of its undisturbed duration, then run to the end.
    report = chaos(disturbed, STAGES, seconds, kills=1, seed=0, at=0.6)

    assert report["violations"] == []
    for stage in ("prepare_data", "train_transcriber"):
        assert report["stages"][stage]["while_running"] == 1, report
    assert compare(reference, disturbed) == []
