"""`wavegen transcribe`: a good and a corrupt file (one MIDI, one error, the rest kept),
and the note decoding it takes from params.yaml and its flags."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import soundfile as sf

from tests.conftest import run, tone, untrained_checkpoint
from wavegen_core.midi.rolls import NoteDecodingConfig
from wavegen_core.params import load_params


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


def _decoding_of(argv: list[str]):
    from wavegen_core.cli import _decoding, build_parser

    return _decoding(build_parser().parse_args(["transcribe", "--out", "o", "a.wav", *argv]))


def test_the_decoding_is_the_params_files_and_flags_override_it(tmp_path, capsys) -> None:
    from wavegen_core import profiles
    from wavegen_core.params import PARAMS_FILE

    params = tmp_path / "params.yaml"
    params.write_text((Path(__file__).resolve().parents[2] / PARAMS_FILE).read_text())
    profiles.apply_profile("cpu", params)
    cpu = load_params(params).transcription.decoding
    assert cpu.restrike_threshold is not None  # the cpu profile's tuned rule

    assert _decoding_of(["--params", str(params)]) == cpu
    overridden = _decoding_of(["--params", str(params), "--onset-threshold", "0.6"])
    assert overridden == cpu.model_copy(update={"onset_threshold": 0.6})
    # Without a params file, the paper's thresholds.
    assert _decoding_of(["--params", str(tmp_path / "none.yaml")]) == NoteDecodingConfig()

    assert _decoding_of(["--params", str(params), "--frame-threshold", "1.5"]) is None
    assert "--frame-threshold" in capsys.readouterr().err
