"""The learnt hierarchy's stages on rendered chorale excerpts: train_vqvae@1, encode@1,
train_vqvae@2, encode@2, train_prior and sample_hierarchy, in the order DVC runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from stages import encode, sample_hierarchy, train_prior, train_vqvae
from tests.conftest import stage_argv, write_chorale_corpus
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.codes import level_digest, read_codes
from wavegen_core.models.hierarchy.vqvae import SPEC as TIER
from wavegen_core.training.metrics import read_curves

pytestmark = pytest.mark.slow

RATE = 16000
SPLITS = ["train"] * 4 + ["validation", "test"]
CODES = 16
STEPS = 60
LOOP = {"batch_size": 4, "checkpoint_every": 30, "log_every": 5, "eval_every": 30}


def _tier(number: int, hop: int, segment: int) -> dict:
    return {
        "input": "data/prepared" if number == 1 else f"data/codes/{number - 1}",
        "hop": hop,
        "codebook_size": CODES,
        "code_dim": 8,
        "width": 16,
        "depth": 1,
        "segment": segment,
        "train": {**LOOP, "steps": STEPS, "learning_rate": 0.002},
    }


def _write_params(root: Path) -> None:
    from wavegen_core.params import Params

    params = Params().model_dump(mode="json")
    params["device"] = "cpu"
    vqvae = params["vqvae"]
    vqvae["tiers"] = {"1": _tier(1, 4, 2048), "2": _tier(2, 2, 128)}
    vqvae["prior"]["model"].update(d_model=32, n_layers=1, n_heads=2, d_ff=64, context=64)
    vqvae["prior"]["train"].update(LOOP, steps=40, learning_rate=0.003)
    vqvae["sample"].update(samples=2, seconds=0.25, reconstruct_pieces=1, reconstruct_seconds=1.0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The whole hierarchy, stage by stage (the tests below read what they wrote)."""
    root = tmp_path_factory.mktemp("hierarchy")
    write_chorale_corpus(root / "data/prepared", SPLITS, 6.0, RATE)
    _write_params(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for tier in ("1", "2"):
            assert train_vqvae.main(stage_argv(f"train_vqvae@{tier}")) == 0
            assert encode.main(stage_argv(f"encode@{tier}")) == 0
        assert train_prior.main(stage_argv("train_prior")) == 0
        assert sample_hierarchy.main(stage_argv("sample_hierarchy")) == 0
    return root


@pytest.mark.parametrize("tier", [1, 2])
def test_each_tier_learns_and_uses_its_codebook_on_rendered_chorales(run, tier) -> None:
    _, losses = read_curves(run / "reports/train_vqvae" / str(tier))["train/loss"]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    metrics = json.loads((run / "reports/encode" / str(tier) / "metrics.json").read_text())
    # No collapse to a handful of codes: most of the book is in use on held-out audio.
    assert metrics["test"]["usage"] >= 0.5, metrics
    assert metrics["test"]["perplexity"] >= 4.0, metrics
    hop = 4 if tier == 1 else 8
    assert metrics["codes_per_second"] == RATE / hop
    assert metrics["bitrate"] == RATE / hop * np.log2(CODES)
    assert (run / "reports/encode" / str(tier) / "usage.png").stat().st_size > 0


def test_encode_covers_every_piece_at_its_hop(run) -> None:
    manifest = json.loads((run / "data/prepared/manifest.json").read_text())["pieces"]
    one, two = read_codes(run / "data/codes/1"), read_codes(run / "data/codes/2")
    assert [p.id for p in one.pieces] == [p["id"] for p in manifest]
    assert {p.split for p in one.pieces} == {"train", "validation", "test"}
    for record, first, second in zip(manifest, one.pieces, two.pieces, strict=True):
        samples = sf.info(run / "data/prepared" / record["audio"]).frames
        assert first.length == -(-samples // 4)
        assert second.length == -(-first.length // 2)
        assert first.values.min() >= 0 and first.values.max() < CODES


def test_tier_two_consumes_exactly_what_encode_wrote(run) -> None:
    checkpoint = load_checkpoint(run / "models/vqvae/2/checkpoint.pt")
    assert checkpoint["config"]["input_digest"] == level_digest(run / "data/codes/1")
    one, two = read_codes(run / "data/codes/1"), read_codes(run / "data/codes/2")
    tier = TIER.load(run / "models/vqvae/2/checkpoint.pt")
    # Its encoder reads tier 1's code vectors as encode@1 wrote them ...
    assert np.array_equal(tier.codebook_below.numpy(), one.codebook)
    # ... and encode@2's codes are tier 2 applied to encode@1's codes.
    piece = one.pieces[0]
    padded = np.zeros(two.pieces[0].length * 2, dtype=np.int64)
    padded[: piece.length] = piece.values
    again = tier.encode(torch.from_numpy(padded)[None])[0].numpy()
    assert np.array_equal(again, two.pieces[0].values)


def test_the_prior_scores_the_test_codes(run) -> None:
    test = json.loads((run / "reports/train_prior/test.json").read_text())
    assert test["tier"] == 2 and test["test_codes"] > 0
    assert 0.0 < test["bits_per_code"] < test["uniform_bits_per_code"]
    _, nll = read_curves(run / "reports/train_prior")["train/nll"]
    assert nll[-1] < nll[0]


def test_samples_and_reconstructions_are_written_and_scored(run) -> None:
    out = run / "data/hierarchy"
    samples = sorted((out / "samples").glob("*.wav"))
    assert [p.name for p in samples] == ["0.wav", "1.wav"]
    steps = -(-int(0.25 * RATE) // 8)  # top codes for 0.25 s, 8 samples each
    for path in samples:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == RATE and len(audio) == steps * 8
        assert np.isfinite(audio).all() and np.sqrt(np.mean(audio**2)) > 1e-4
        assert path.with_suffix(".png").stat().st_size > 0
    original = sorted((out / "reconstructions/original").glob("*.wav"))
    assert len(original) == 1
    truth, _ = sf.read(original[0], dtype="float32")
    assert len(truth) == RATE  # 1 s, a multiple of the top tier's 8 samples
    for tier in (1, 2):
        decoded, _ = sf.read(out / f"reconstructions/tier{tier}" / original[0].name)
        assert len(decoded) == len(truth)
    metrics = json.loads((run / "reports/sample_hierarchy/metrics.json").read_text())
    for tier, bitrate in ((1, RATE / 4 * 4), (2, RATE / 8 * 4)):
        scores = metrics[f"tier_{tier}"]
        assert scores["bitrate"] == bitrate
        assert np.isfinite(scores["mr_stft"]) and scores["mr_stft"] > 0
        assert np.isfinite(scores["mel_l1"]) and scores["mel_l1"] > 0
    speed = json.loads((run / "reports/sample_hierarchy/speed.json").read_text())
    assert speed["seconds_per_second"] > 0
    assert (run / "reports/sample_hierarchy/example.png").stat().st_size > 0


def test_a_tier_that_params_do_not_define_exits_2(run, capsys) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run)
        argv = ["3", "--input", "data/codes/2", "--checkpoint", "m.pt", "--reports", "r"]
        assert train_vqvae.main(argv) == 2
    assert "not 3" in capsys.readouterr().err


def test_a_tier_given_the_wrong_level_below_fails_naming_it(run, capsys) -> None:
    """Tier 2 encodes tier 1's codes: pointed at the audio, it refuses before training."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run)
        argv = ["2", "--input", "data/prepared", "--checkpoint", "m.pt", "--reports", "r"]
        assert train_vqvae.main(argv) == 1
    assert "tier 2 encodes tier 1 codes, but data/prepared holds audio" in capsys.readouterr().err
    assert not (run / "m.pt").exists()


def test_a_resumed_tier_ends_where_an_uninterrupted_one_does_byte_for_byte(run, tmp_path) -> None:
    """Tier 1, its EMA codebook and code restarts included: the same checkpoint bytes
    whether the run stopped halfway or not, so DVC gives both one hash."""
    import shutil

    files = {}
    for name, stops in (("straight", [6]), ("resumed", [3, 6])):
        root = tmp_path / name
        shutil.copytree(run / "data/prepared", root / "data/prepared")
        for steps in stops:
            _write_params(root)
            params = yaml.safe_load((root / "params.yaml").read_text())
            params["vqvae"]["tiers"]["1"]["train"].update(
                steps=steps, checkpoint_every=3, eval_every=3
            )
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(root)
                assert train_vqvae.main(stage_argv("train_vqvae@1")) == 0
        files[name] = root / "models/vqvae/1/checkpoint.pt"
        assert load_checkpoint(files[name])["step"] == 6
    straight, resumed = (load_checkpoint(files[n]) for n in ("straight", "resumed"))
    for key, tensor in straight["state"].items():
        assert torch.equal(tensor, resumed["state"][key]), key
    assert files["straight"].read_bytes() == files["resumed"].read_bytes()


def test_pieces_of_a_tier_are_reconstructed_as_one_batch_each_cut_to_its_length(run) -> None:
    from wavegen_core.models.hierarchy.stack import Hierarchy

    tiers = [TIER.load(run / f"models/vqvae/{k}/checkpoint.pt", "cpu") for k in (1, 2)]
    hierarchy = Hierarchy(tiers)
    (original,) = (run / "data/hierarchy/reconstructions/original").glob("*.wav")
    audio, _ = sf.read(original, dtype="float32")
    long, short = audio[:4096], audio[1024:2048]  # multiples of the top tier's 8 samples
    decoded, codes = sample_hierarchy.reconstruct(
        hierarchy, [long, short], 2, torch.Generator().manual_seed(0), 1.0, torch.device("cpu")
    )
    assert [len(d) for d in decoded] == [4096, 1024]
    assert all(torch.isfinite(d).all() for d in decoded)
    # The longest piece is not padded: its codes are those it has alone.
    alone = hierarchy.encode(torch.from_numpy(long)[None], 2)
    assert [c.shape for c in codes] == [(2, 1024), (2, 512)]
    for batched, single in zip(codes, alone, strict=True):
        assert torch.equal(batched[0], single[0])
    assert sample_hierarchy.reconstruct(hierarchy, [], 2, torch.Generator(), 1.0, "cpu") == ([], [])
