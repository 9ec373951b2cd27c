"""A transcriber trained on streamed pieces (audio read per excerpt, labels as note
tables) ends with the weights of one trained on pieces held in memory, bit for bit."""

from __future__ import annotations

import torch

from tests.conftest import write_chorale_corpus
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.segments import load_aligned
from wavegen_core.params import TranscriptionConfig
from wavegen_core.training.transcriber import train_transcriber


def test_the_streamed_transcriber_run_equals_the_in_memory_run(tmp_path) -> None:
    write_chorale_corpus(tmp_path / "prepared", ["train", "train", "validation"], 5.0, 16000)
    config = TranscriptionConfig.model_validate(
        {"train": {"steps": 4, "batch_size": 4, "checkpoint_every": 2, "eval_every": 4}}
    )
    pieces = read_manifest(tmp_path / "prepared")
    mel = config.model.mel
    for stream in (False, True):
        train, validation = (
            load_aligned(
                [p for p in pieces if p.split == split], tmp_path / "prepared", mel, stream
            )
            for split in ("train", "validation")
        )
        train_transcriber(
            config,
            train,
            validation,
            seed=3,
            device=torch.device("cpu"),
            checkpoint_path=tmp_path / f"stream-{stream}" / "checkpoint.pt",
            metrics_dir=tmp_path / f"stream-{stream}",
        )
    ours = load_checkpoint(tmp_path / "stream-True" / "checkpoint.pt")
    theirs = load_checkpoint(tmp_path / "stream-False" / "checkpoint.pt")
    assert ours["metrics"] == theirs["metrics"]
    for key, value in theirs["state"].items():
        assert torch.equal(ours["state"][key], value), key
    assert (tmp_path / "stream-True" / "checkpoint.pt").read_bytes() == (
        tmp_path / "stream-False" / "checkpoint.pt"
    ).read_bytes()
