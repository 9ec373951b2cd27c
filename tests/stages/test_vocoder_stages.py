"""train_vocoder@<family> and synthesize@<family>, run as stages on rendered chorale excerpts.

The workspace is tests/stages/vocoder_corpus.py's; the resumed runs are
tests/stages/test_vocoder_resume.py's (a file of their own, so that a second worker runs
them beside these).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from stages import synthesize, synthesize_mel, train_vocoder, train_vocoder_mel
from tests.conftest import basic_pitch_here, stage_argv
from tests.families import LEARNING_STEPS
from tests.stages.vocoder_corpus import (
    HOP,
    RATE,
    write_vocoder_corpus,
    write_vocoder_params,
)
from wavegen_core.models.vocoders.config import vocoder_sections
from wavegen_core.models.vocoders.registry import vocoder_families
from wavegen_core.training.metrics import read_curves

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return write_vocoder_corpus(tmp_path_factory.mktemp("vocoders"))


@pytest.fixture(scope="module")
def trained(workdir) -> Path:
    """All three families trained once (the tests below read what the stages wrote)."""
    write_vocoder_params(workdir)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        for family in vocoder_families():
            assert train_vocoder.main(stage_argv(f"train_vocoder@{family}")) == 0
    return workdir


# The figure each family's loss is judged by: the GAN's total mixes the two players'
# losses, whose sum need not fall; its mel L1 must.
FALLING = {
    "wavenet": "train/nll",
    "flow": "train/nll",
    # The spectral distance of one batch varies with its notes more than 60 steps of
    # DDSP lower it: judged on the fixed validation excerpts, every 25 steps.
    "ddsp": "eval/loss",
    "gan": "train/mel_l1",
}
# How far each family's figure must fall: DDSP starts from a piano-like sound (partials
# falling as 1/k^2), so its first evaluation is already close; it must still fall by 5 %.
FALL = {"wavenet": 0.1, "flow": 0.1, "ddsp": 0.05, "gan": 0.1}


@pytest.mark.parametrize("family", vocoder_families())
def test_each_family_learns_from_rendered_chorales(trained, family) -> None:
    report = trained / "reports/train_vocoder" / family
    curves = read_curves(report)
    _, values = curves[FALLING[family]]
    first, last = np.mean(values[:2]), np.mean(values[-2:])
    assert last < first - FALL[family] * abs(first), (family, values)
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["step"] == LEARNING_STEPS[family]
    assert "eval/generated_mel_l1" in metrics
    assert (report / "loss_curves.png").stat().st_size > 0
    assert (trained / "models/vocoder" / family / "checkpoint.pt").is_file()


@pytest.mark.parametrize("family", vocoder_families())
def test_synthesize_writes_audible_audio_of_the_right_length_and_scores_it(trained, family) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        assert synthesize.main(stage_argv(f"synthesize@{family}")) == 0
    out = trained / "data/synthesized" / family
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["kind"] for p in manifest["pieces"]] == ["test", "composed"]
    frames = -(-int(0.5 * RATE) // HOP)
    for piece in manifest["pieces"]:
        audio, rate = sf.read(out / piece["audio"], dtype="float32")
        assert rate == RATE and len(audio) == frames * HOP
        assert np.sqrt(np.mean(audio**2)) > 1e-3, f"{family} {piece['id']} is silent"
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
        reference, _ = sf.read(out / piece["soundfont"], dtype="float32")
        assert len(reference) == len(audio)
        assert (out / piece["audio"]).with_suffix(".png").stat().st_size > 0
        sine, _ = sf.read(out / piece["sine"], dtype="float32")
        assert len(sine) == len(audio)
    metrics = json.loads((trained / "reports/synthesize" / family / "metrics.json").read_text())
    # basic-pitch, the judge, scores beside our transcriber where it is installed.
    judged = {"judge_onset_f1"} if basic_pitch_here() else set()
    for name in (family, "soundfont", "sine", "noise"):
        assert set(metrics["test"][name]) == {
            "onset_f1",
            "mr_stft",
            "spectral_convergence",
            "log_magnitude_l1",
            "mel_l1",
            *judged,
        }
        assert set(metrics["composed"][name]) == {"onset_f1", *judged}
        for score in metrics["composed"][name].values():
            assert 0.0 <= score <= 1.0
    assert set(metrics["test"]["true_audio"]) == {"onset_f1", *judged}
    # The chorales' true audio is the soundfont's render of the same notes (before the
    # MIDI file's tick rounding): the reference is far closer than a briefly trained model.
    assert metrics["test"]["soundfont"]["mr_stft"] < 0.5 * metrics["test"][family]["mr_stft"]
    speed = json.loads((trained / "reports/synthesize" / family / "speed.json").read_text())
    assert speed["real_time_factor"][family] > 0 and speed["device"] == "cpu"
    assert (trained / "reports/synthesize" / family / "example.png").stat().st_size > 0


def test_another_familys_checkpoint_is_refused_by_name(trained, capsys) -> None:
    """synthesize@ddsp given the GAN's checkpoint says so, and writes nothing."""
    argv = stage_argv("synthesize@ddsp")
    argv[argv.index("--checkpoint") + 1] = "models/vocoder/gan/checkpoint.pt"
    argv[argv.index("--out") + 1] = "data/synthesized/mixed_up"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        assert synthesize.main(argv) == 1
    error = capsys.readouterr().err
    assert "models/vocoder/gan/checkpoint.pt holds a gan model, not ddsp" in error
    assert "Traceback" not in error
    assert not (trained / "data/synthesized/mixed_up").exists()


def test_a_family_not_listed_in_params_is_refused(trained, capsys) -> None:
    params = yaml.safe_load((trained / "params.yaml").read_text())
    params["vocoder"]["families"] = ["gan"]
    params["vocoder"]["mel"]["families"] = []
    other = trained / "only_gan.yaml"
    other.write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        assert train_vocoder.main(stage_argv("train_vocoder@flow", "--params", str(other))) == 2
    assert "does not list 'flow'" in capsys.readouterr().err


# The families that take the excitation in (DDSP's own oscillators play the notes).
NEURAL = [family for family in vocoder_families() if vocoder_sections()[family].uses_excitation]


@pytest.fixture(scope="module")
def plain(workdir, tmp_path_factory) -> Path:
    """The neural families trained again on the roll alone (``excitation: none``; the
    shipped params give them the harmonic excitation, as ``trained`` does)."""
    import shutil

    root = tmp_path_factory.mktemp("plain")
    shutil.copytree(workdir / "data", root / "data")
    shutil.copytree(workdir / "models/transcriber", root / "models/transcriber")
    write_vocoder_params(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vocoder"]["conditioning"]["excitation"] = "none"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for family in NEURAL:
            assert train_vocoder.main(stage_argv(f"train_vocoder@{family}")) == 0
            assert synthesize.main(stage_argv(f"synthesize@{family}")) == 0
    return root


@pytest.mark.parametrize("excitation", ["harmonic", "none"])
@pytest.mark.parametrize("family", NEURAL)
def test_each_neural_family_learns_and_renders_with_and_without_the_excitation(
    request, family, excitation
) -> None:
    """With the excitation, training excerpts carry the frames it reads before them and
    synthesis gives each chunk those frames; either way the family learns and renders
    whole pieces to audible audio of the right length."""
    from wavegen_core.checkpoint import load_checkpoint

    root = request.getfixturevalue("trained" if excitation == "harmonic" else "plain")
    if excitation == "harmonic":
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            assert synthesize.main(stage_argv(f"synthesize@{family}")) == 0
    _, values = read_curves(root / "reports/train_vocoder" / family)[FALLING[family]]
    first, last = np.mean(values[:2]), np.mean(values[-2:])
    assert last < first - FALL[family] * abs(first), (family, values)
    saved = load_checkpoint(root / "models/vocoder" / family / "checkpoint.pt")["config"]
    assert saved["conditioning"]["excitation"] == excitation
    out = root / "data/synthesized" / family
    manifest = json.loads((out / "manifest.json").read_text())
    frames = -(-int(0.5 * RATE) // HOP)
    for piece in manifest["pieces"]:
        audio, _ = sf.read(out / piece["audio"], dtype="float32")
        assert len(audio) == frames * HOP and np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) > 1e-3, f"{family} {piece['id']} is silent"


@pytest.fixture(scope="module")
def mel_trained(trained) -> Path:
    """The flow trained again on the true audio's log-mel frames (vocoder.mel)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        assert train_vocoder_mel.main(stage_argv("train_vocoder_mel@flow")) == 0
    return trained


def test_a_mel_conditioned_flow_learns_and_renders_through_ddsps_mels(mel_trained) -> None:
    """train_vocoder_mel@flow learns on the true audio's mels; synthesize_mel@flow renders
    every piece from the mels of DDSP's render (row flow_mel) and the test pieces also
    from their true audio's (row flow_true_mel), beside the references."""
    from wavegen_core.checkpoint import load_checkpoint

    root = mel_trained
    _, values = read_curves(root / "reports/train_vocoder/flow_mel")["train/nll"]
    first, last = np.mean(values[:2]), np.mean(values[-2:])
    assert last < first - FALL["flow"] * abs(first), values
    saved = load_checkpoint(root / "models/vocoder/flow_mel/checkpoint.pt")["config"]
    assert saved["mel"]["inputs"] == "mel" and saved["conditioning"]["excitation"] == "none"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert synthesize_mel.main(stage_argv("synthesize_mel@flow")) == 0
    out = root / "data/synthesized/flow_mel"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "flow_mel"
    frames = -(-int(0.5 * RATE) // HOP)
    for piece in manifest["pieces"]:
        audio, _ = sf.read(out / piece["audio"], dtype="float32")
        assert len(audio) == frames * HOP and np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) > 1e-3, f"flow_mel {piece['id']} is silent"
        ceiling = out / "flow_true_mel" / f"{piece['kind']}_{piece['id']}.wav"
        assert ceiling.is_file() == (piece["kind"] == "test")
    metrics = json.loads((root / "reports/synthesize/flow_mel/metrics.json").read_text())
    assert {"flow_mel", "flow_true_mel", "soundfont", "sine", "noise"} <= set(metrics["test"])
    assert "flow_true_mel" not in metrics["composed"] and "flow_mel" in metrics["composed"]
    speed = json.loads((root / "reports/synthesize/flow_mel/speed.json").read_text())
    assert speed["real_time_factor"]["flow_mel"] > 0


def test_synthesize_mel_refuses_a_roll_model_and_a_source_at_another_rate(
    mel_trained, tmp_path, capsys
) -> None:
    import torch

    root = mel_trained
    roll_model = stage_argv("synthesize_mel@flow")
    roll_model[roll_model.index("--checkpoint") + 1] = "models/vocoder/flow/checkpoint.pt"
    roll_model[roll_model.index("--out") + 1] = str(tmp_path / "roll")
    other_rate = stage_argv("synthesize_mel@flow")
    ddsp = torch.load(root / "models/vocoder/ddsp/checkpoint.pt", weights_only=True)
    ddsp["config"]["sample_rate"] = 22050
    torch.save(ddsp, tmp_path / "ddsp.pt")
    other_rate[other_rate.index("--mel-source") + 1] = str(tmp_path / "ddsp.pt")
    other_rate[other_rate.index("--out") + 1] = str(tmp_path / "rate")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert synthesize_mel.main(roll_model) == 1
        assert "is not conditioned on log-mel frames" in capsys.readouterr().err
        assert synthesize_mel.main(other_rate) == 1
    error = capsys.readouterr().err
    assert "22050 Hz" in error and f"{RATE} Hz" in error and "Traceback" not in error
    assert not (tmp_path / "roll").exists() and not (tmp_path / "rate").exists()
