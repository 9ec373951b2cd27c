"""`wavegen synthesize`: a MIDI file of any length to a WAV with a trained vocoder; clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import scale_midi
from tests.families import SMALL_CONDITIONING, SMALL_SECTIONS
from wavegen_core.checkpoint import save_checkpoint
from wavegen_core.cli import main
from wavegen_core.midi.io import write_midi
from wavegen_core.models.vocoders.config import ConditioningConfig
from wavegen_core.models.vocoders.gan.config import GanConfig
from wavegen_core.models.vocoders.registry import load_vocoder, vocoder_families, vocoder_spec

RATE = 16000
# Not the small hop: the melody's 1.25 s (with its tail) are 312.5 frames of 64 samples,
# so the render must round up to a whole frame.
HOP = 64
CONDITIONING = ConditioningConfig.model_validate(
    {**SMALL_CONDITIONING.model_dump(), "hop_length": HOP}
)
# The GAN's upsampling multiplies to the hop.
SMALL = {
    **SMALL_SECTIONS,
    "gan": GanConfig.model_validate(
        {
            **SMALL_SECTIONS["gan"].model_dump(),
            "upsample_rates": [8, 8],
            "upsample_kernel_sizes": [16, 16],
        }
    ),
}


def _checkpoint(tmp_path: Path, family: str) -> Path:
    """An untrained small vocoder's checkpoint, as train_vocoder writes them."""
    torch.manual_seed(0)
    spec = vocoder_spec(family)
    saved = spec.checkpoint_config(SMALL[family], CONDITIONING, RATE, seed=0)
    model = spec.build(saved)
    path = tmp_path / f"{family}.pt"
    save_checkpoint(
        path, model, torch.optim.Adam(model.parameters()), step=0, config=saved, metrics={}
    )
    return path


@pytest.fixture()
def melody(tmp_path: Path) -> Path:
    path = tmp_path / "melody.mid"
    write_midi(path, scale_midi([60, 62, 64, 65], step=0.25))  # ends at 1.0 s
    return path


def test_the_checkpoint_alone_rebuilds_the_model(tmp_path) -> None:
    for family in vocoder_families():
        loaded = load_vocoder(_checkpoint(tmp_path, family))
        assert (loaded.spec.name, loaded.sample_rate, loaded.hop_length) == (family, RATE, HOP)
        torch.manual_seed(0)
        spec = vocoder_spec(family)
        fresh = spec.build(spec.checkpoint_config(SMALL[family], CONDITIONING, RATE, seed=0))
        for name, tensor in spec.inference_state(fresh.state_dict()).items():
            assert torch.equal(loaded.model.state_dict()[name], tensor), (family, name)


@pytest.mark.parametrize("family", vocoder_families())
def test_renders_the_whole_piece_and_its_tail(tmp_path, melody, family, capsys) -> None:
    out = tmp_path / f"{family}.wav"
    args = ["synthesize", "--checkpoint", str(_checkpoint(tmp_path, family)), "--midi", str(melody)]
    args += ["--out", str(out), "--seed", "1", "--device", "cpu", "--chunk-frames", "64"]
    assert main(args) == 0
    audio, rate = sf.read(out, dtype="float32")
    samples = round((1.0 + 0.25) * RATE)  # the last note-off plus the default tail
    assert rate == RATE and len(audio) == -(-samples // HOP) * HOP
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert family in capsys.readouterr().out


def test_seconds_cuts_and_the_seed_repeats(tmp_path, melody) -> None:
    checkpoint = _checkpoint(tmp_path, "flow")
    renders = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.wav"
        args = ["synthesize", "--checkpoint", str(checkpoint), "--midi", str(melody)]
        args += ["--out", str(out), "--seconds", "0.5", "--seed", str(seed), "--device", "cpu"]
        assert main(args) == 0
        renders.append(sf.read(out, dtype="float32")[0])
    assert len(renders[0]) == -(-RATE // 2 // HOP) * HOP
    assert np.array_equal(renders[0], renders[1]) and not np.array_equal(renders[0], renders[2])


def test_bad_input_gets_a_clear_error(tmp_path, melody, capsys) -> None:
    checkpoint = _checkpoint(tmp_path, "gan")
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd not a midi file")
    out = tmp_path / "x.wav"
    base = ["synthesize", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*base, "--midi", str(broken)]) == 1
    assert "broken.mid" in capsys.readouterr().err
    assert main([*base, "--midi", str(melody), "--temperature", "-1"]) == 2
    assert "--temperature" in capsys.readouterr().err
    missing = ["synthesize", "--checkpoint", str(tmp_path / "none.pt"), "--midi", str(melody)]
    assert main([*missing, "--out", str(out)]) == 1
    assert "cannot load" in capsys.readouterr().err
    assert not out.exists()


def test_a_mel_conditioned_model_renders_through_its_mel_source(tmp_path, melody, capsys) -> None:
    """A train_vocoder_mel checkpoint renders from the mels of --mel-source's render; it
    says so without one, and refuses a source at another hop, naming both."""
    from wavegen_core.models.vocoders.config import MelFramesConfig

    torch.manual_seed(0)
    spec = vocoder_spec("flow")
    plain = CONDITIONING.model_copy(update={"excitation": "none"})
    mel = MelFramesConfig(bins=16, n_fft=256)
    saved = spec.checkpoint_config(SMALL["flow"], plain, RATE, seed=0, mel=mel)
    model = spec.build(saved)
    checkpoint = tmp_path / "flow_mel.pt"
    save_checkpoint(
        checkpoint, model, torch.optim.Adam(model.parameters()), step=0, config=saved, metrics={}
    )
    out = tmp_path / "mel.wav"
    base = ["synthesize", "--checkpoint", str(checkpoint), "--midi", str(melody)]
    base += ["--out", str(out), "--device", "cpu"]
    assert main(base) == 2
    assert "--mel-source" in capsys.readouterr().err
    assert main([*base, "--mel-source", str(_checkpoint(tmp_path, "ddsp"))]) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(audio) == -(-round(1.25 * RATE) // HOP) * HOP
    assert np.isfinite(audio).all()
    other = CONDITIONING.model_copy(update={"hop_length": 2 * HOP})
    ddsp = vocoder_spec("ddsp")
    saved = ddsp.checkpoint_config(SMALL["ddsp"], other, RATE, seed=0)
    source = tmp_path / "ddsp_hop128.pt"
    built = ddsp.build(saved)
    save_checkpoint(
        source, built, torch.optim.Adam(built.parameters()), step=0, config=saved, metrics={}
    )
    out.unlink()
    assert main([*base, "--mel-source", str(source)]) == 1
    error = capsys.readouterr().err
    assert f"hop of {2 * HOP}" in error and f"hop of {HOP}" in error
    assert not out.exists()
