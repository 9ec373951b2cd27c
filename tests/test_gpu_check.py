"""tools/gpu_check.py on CPU at the tiny profile: the smoke run of the GPU check.

Every trained model runs its own training function in fp32 and in bf16 (autocast on
CPU), then each vocoder family and the hierarchy generate; the check exits 0 and
reports a speed for every row. On a GPU the same code runs at the full profile.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks._material import trainers
from tools import gpu_check
from wavegen_core.profiles import params_under_profile

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_every_stage_in_both_precisions_on_cpu(tmp_path, capsys) -> None:
    out = tmp_path / "rows.json"
    argv = ["--device", "cpu", "--profile", "tiny", "--steps", "3", "--seconds", "0.25"]
    assert gpu_check.main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    params = params_under_profile("tiny")
    trained = set(trainers(params))
    assert {"train_transcriber", "train_vocoder@gan", "train_vqvae@2", "train_prior"} <= trained
    for name in trained:
        ran = {row["precision"]: row for row in rows if row["row"] == name}
        assert set(ran) == {"fp32", "bf16"}, name
        assert all(
            math.isfinite(row["steps_per_s"]) and row["steps_per_s"] > 0 for row in ran.values()
        )
    generated = [row for row in rows if row["row"].startswith("generate")]
    assert len(generated) == len(params.vocoder.families) + 1
    assert all(row["samples_per_s"] > 0 for row in generated)
    table = capsys.readouterr().out
    assert "| train_transcriber | bf16 |" in table and "generate hierarchy" in table
