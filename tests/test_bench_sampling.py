"""benchmarks/bench_sampling.py on two 1-s validation pieces: a roll model and a mel model
(through an untrained DDSP's mels, and the true mels) at two temperatures each, scored by
the judge, with the temperature chosen on the deciding rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench_sampling
from tests.conftest import need_basic_pitch, write_chorale_corpus
from tests.families import SMALL_SECTIONS
from wavegen_core.checkpoint import save_checkpoint
from wavegen_core.models.vocoders.config import ConditioningConfig, MelFramesConfig
from wavegen_core.models.vocoders.registry import vocoder_spec

pytestmark = pytest.mark.slow

RATE = 16000
CONDITIONING = ConditioningConfig(hop_length=64, channels=8, excitation="none")


def _checkpoint(path: Path, family: str, mel: MelFramesConfig | None = None) -> Path:
    torch.manual_seed(0)
    spec = vocoder_spec(family)
    saved = spec.checkpoint_config(SMALL_SECTIONS[family], CONDITIONING, RATE, 0, mel=mel)
    model = spec.build(saved)
    optimiser = torch.optim.Adam(model.parameters())
    save_checkpoint(path, model, optimiser, step=0, config=saved, metrics={})
    return path


@pytest.mark.parametrize("mel", [False, True])
def test_renders_are_scored_at_each_temperature_and_one_is_chosen(tmp_path, repo_root, mel) -> None:
    need_basic_pitch()
    corpus = tmp_path / "corpus"
    write_chorale_corpus(corpus, ["train", "validation", "validation"], seconds=2.0, rate=RATE)
    frames = MelFramesConfig(bins=16, n_fft=256) if mel else None
    checkpoint = _checkpoint(tmp_path / "flow.pt", "flow", frames)
    out = tmp_path / "out"
    argv = ["--corpus", str(corpus), "--checkpoint", str(checkpoint), "--pieces", "2"]
    argv += ["--seconds", "1", "--temperature", "0", "--temperature", "0.6"]
    argv += ["--params", str(repo_root / "params.yaml"), "--out", str(out)]
    if mel:
        argv += ["--mel-source", str(_checkpoint(tmp_path / "ddsp.pt", "ddsp"))]
    bench_sampling.main(argv)

    result = json.loads((out / "sampling.json").read_text())
    assert result["family"] == "flow" and len(result["pieces"]) == 2
    kinds = ["source_mel", "true_mel"] if mel else ["roll"]
    assert [(r["conditioning"], r["temperature"]) for r in result["rows"]] == [
        (kind, t) for kind in kinds for t in (0.0, 0.6)
    ]
    for row in result["rows"]:
        assert 0.0 <= row["judge_onset_f1"] <= 1.0 and row["mr_stft"] > 0
    deciding = [r for r in result["rows"] if r["conditioning"] == kinds[0]]
    best = max(deciding, key=lambda r: (r["judge_onset_f1"], -r["mr_stft"]))
    assert result["chosen_temperature"] == best["temperature"]
    assert result["truth"]["judge_onset_f1"] >= 0.5  # the judge hears the truth
    assert (out / f"{kinds[0]}_T0.6.wav").stat().st_size > 30_000
    assert (out / "renders.png").stat().st_size > 10_000
