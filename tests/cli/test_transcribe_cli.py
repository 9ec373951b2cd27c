"""`wavegen transcribe` on a good and a corrupt file: one MIDI, one error, the rest kept."""

from __future__ import annotations

import pretty_midi
import soundfile as sf

from tests.conftest import run, tone, untrained_checkpoint


def test_corrupt_file_is_reported_and_the_good_one_transcribed(tmp_path, venv_env) -> None:
    untrained_checkpoint(tmp_path / "checkpoint.pt")
    sf.write(tmp_path / "good.wav", tone(3.0, 44100, channels=2), 44100)
    (tmp_path / "broken.flac").write_bytes(b"fLaC not really")
    out = tmp_path / "midi"

    result = run(
        [
            "wavegen",
            "transcribe",
            "--checkpoint",
            str(tmp_path / "checkpoint.pt"),
            "--out",
            str(out),
            str(tmp_path / "broken.flac"),
            str(tmp_path / "good.wav"),
        ],
        tmp_path,
        venv_env,
        check=False,
    )

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(errors) == 1 and "broken.flac" in errors[0] and "unreadable audio" in errors[0]
    assert [p.name for p in out.iterdir()] == ["good.mid"]
    pretty_midi.PrettyMIDI(str(out / "good.mid"))  # a valid MIDI file


def test_our_model_needs_a_checkpoint_and_a_missing_one_is_named(tmp_path, venv_env) -> None:
    sf.write(tmp_path / "good.wav", tone(1.0, 16000), 16000)
    base = ["wavegen", "transcribe", "--out", str(tmp_path / "midi"), str(tmp_path / "good.wav")]
    result = run(base, tmp_path, venv_env, check=False)
    assert result.returncode == 2 and "--checkpoint is required" in result.stderr
    missing = tmp_path / "nowhere.pt"
    result = run([*base, "--checkpoint", str(missing)], tmp_path, venv_env, check=False)
    assert result.returncode == 1 and f"no transcriber checkpoint at {missing}" in result.stderr
    assert not (tmp_path / "midi").exists()
