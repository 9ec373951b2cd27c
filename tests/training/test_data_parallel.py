"""Data-parallel training: two gloo processes on CPU, as `train.nproc: 2` starts them.

The stage is run as dvc.yaml runs it (`python -m stages.<stage>`); with nproc 2 it
starts itself again under torchrun. Two processes with a global batch B end with the
weights of one process with batch B, to float tolerance, for the transcriber, the GAN
(two optimisers) and the prior (a loss over a global count of codes); a two-process
run killed after a checkpoint resumes to exactly the weights of an uninterrupted one.

Dropout is off here: each rank draws its own masks, so with dropout a two-process run
is an equally valid run, not the one-process run's twin.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stages import train_prior, train_transcriber, train_vocoder
from tests.conftest import REPO_ROOT, write_chorale_corpus
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.codes import write_codes
from wavegen_core.data.manifest import write_manifest

pytestmark = pytest.mark.slow

RATE = 16000
# Convolution biases just before a batch norm get a gradient of zero up to rounding,
# which Adam turns into steps of the full learning rate; the running means follow them.
# Neither changes what the network computes in training. Everything else must agree.
BEFORE_BATCH_NORM = re.compile(r"acoustic\.convolutions\.\d+\.bias$|running_mean$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parallel")
    write_chorale_corpus(root / "prepared", ["train", "train", "validation"], 6.0, RATE)
    write_manifest(root / "variants", [])
    return root


def _params(root: Path, name: str, nproc: int, section: str) -> Path:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    train = {"steps": 9, "batch_size": 4, "checkpoint_every": 3, "eval_every": 9}
    train.update(log_every=1, device="cpu", nproc=nproc)
    if section == "transcription":
        params["transcription"]["train"].update(train)
        params["transcription"]["model"].update(conv_dropout=0.0, fc_dropout=0.0)
    elif section == "prior":
        params["vqvae"]["prior"]["train"].update({**train, "steps": 6, "eval_every": 6})
        params["vqvae"]["prior"]["model"].update(dropout=0.0, context=64)
    else:
        params["vocoder"]["gan"]["train"].update({**train, "steps": 4, "eval_every": 4})
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _argv(root: Path, name: str, params: Path, stage: str) -> list[str]:
    paths = ["--checkpoint", str(root / name / "checkpoint.pt"), "--reports", str(root / name)]
    paths += ["--params", str(params)]
    if stage == "transcriber":
        data = ["--corpus", str(root / "prepared"), "--variants", str(root / "variants")]
        return [*data, *paths]
    if stage == "prior":
        return ["--codes", str(root / "codes"), *paths]
    return ["gan", "--corpus", str(root / "prepared"), *paths]


def _module(stage: str) -> str:
    modules = {"transcriber": "train_transcriber", "prior": "train_prior", "gan": "train_vocoder"}
    return f"stages.{modules[stage]}"


def _start(argv: list[str], stage: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", _module(stage), *argv],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: a kill reaches torchrun and both ranks
    )


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def _state(root: Path, name: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(root / name / "checkpoint.pt")["state"]


def _assert_close(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> None:
    assert one.keys() == two.keys()
    compared = 0
    for key, value in one.items():
        if BEFORE_BATCH_NORM.search(key) or not value.is_floating_point():
            continue
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-4, msg=key)
        compared += 1
    assert compared > len(one) // 2


def test_two_processes_train_the_transcriber_as_one_and_a_killed_pair_resumes(corpus) -> None:
    single = _params(corpus, "t1", 1, "transcription")
    assert train_transcriber.main(_argv(corpus, "one", single, "transcriber")) == 0

    pair = _params(corpus, "t2", 2, "transcription")
    out = _finish(_start(_argv(corpus, "two", pair, "transcriber"), "transcriber"))
    assert "transcription.train.nproc = 2: starting 2 processes with torchrun" in out
    assert "rank 1 of 2" in out
    _assert_close(_state(corpus, "one"), _state(corpus, "two"))
    metrics = load_checkpoint(corpus / "two" / "checkpoint.pt")["metrics"]
    expected = load_checkpoint(corpus / "one" / "checkpoint.pt")["metrics"]
    assert metrics["train/loss"] == pytest.approx(expected["train/loss"], rel=1e-4)

    killed = _start(_argv(corpus, "killed", pair, "transcriber"), "transcriber")
    checkpoint = corpus / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert load_checkpoint(checkpoint)["step"] < 9  # killed mid-run, not at the end
    resumed = _finish(_start(_argv(corpus, "killed", pair, "transcriber"), "transcriber"))
    assert "resuming from step" in resumed
    final, uninterrupted = _state(corpus, "killed"), _state(corpus, "two")
    for key, value in uninterrupted.items():
        assert torch.equal(final[key], value), key
    assert "rng_by_rank" in load_checkpoint(checkpoint)


def test_two_processes_train_the_gan_and_its_two_optimisers_as_one(corpus) -> None:
    single = _params(corpus, "g1", 1, "gan")
    assert train_vocoder.main(_argv(corpus, "gan-one", single, "gan")) == 0
    pair = _params(corpus, "g2", 2, "gan")
    _finish(_start(_argv(corpus, "gan-two", pair, "gan"), "gan"))
    one, two = _state(corpus, "gan-one"), _state(corpus, "gan-two")
    _assert_close(one, two)
    # Both networks (the discriminators: multi-period and multi-scale) were compared.
    for network in ("generator.", "mpd.", "msd."):
        assert any(name.startswith(network) for name in one)
    assert set(load_checkpoint(corpus / "gan-two" / "checkpoint.pt")["optimizer"]) == {
        "discriminator",
        "generator",
    }


def test_two_processes_train_the_prior_as_one(corpus) -> None:
    """The prior's loss is a mean over the global batch's codes (padding left out), not
    a mean of the ranks' means: its windows of short pieces hold different counts."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    top = max(params["vqvae"]["tiers"], key=int)
    size = params["vqvae"]["tiers"][top]["codebook_size"]
    rng = np.random.default_rng(0)
    # Pieces shorter than a window: the ranks' shares hold different numbers of codes.
    lengths = [("a", "train", 300), ("b", "train", 40), ("c", "train", 90), ("v", "validation", 80)]
    records = [{"id": name, "split": split, "length": n} for name, split, n in lengths]
    codes = (rng.integers(0, size, n) for _, _, n in lengths)
    codebook = rng.standard_normal((size, 8)).astype(np.float32)
    info = {"tier": int(top), "codebook_size": size, "codes_per_second": 500.0}
    write_codes(corpus / "codes" / top, records, codes, codebook, info)

    assert (
        train_prior.main(_argv(corpus, "prior-one", _params(corpus, "p1", 1, "prior"), "prior"))
        == 0
    )
    pair = _params(corpus, "p2", 2, "prior")
    out = _finish(_start(_argv(corpus, "prior-two", pair, "prior"), "prior"))
    assert "rank 1 of 2" in out
    _assert_close(_state(corpus, "prior-one"), _state(corpus, "prior-two"))
    metrics = load_checkpoint(corpus / "prior-two" / "checkpoint.pt")["metrics"]
    expected = load_checkpoint(corpus / "prior-one" / "checkpoint.pt")["metrics"]
    assert metrics["train/loss"] == pytest.approx(expected["train/loss"], rel=1e-4)
