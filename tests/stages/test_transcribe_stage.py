"""The `transcribe` stage on a hand-made corpus: bad audio is listed, not fatal; resume."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_params, stage_args, tone, untrained_checkpoint
from wavegen_core.audio.io import write_wav
from wavegen_core.data.manifest import Piece, write_manifest
from wavegen_core.errors import WavegenError


def _piece(piece_id: str, split: str) -> Piece:
    return Piece(
        id=piece_id,
        audio=f"audio/{piece_id}.wav",
        midi=None,
        duration=2.0,
        split=split,
        source="folder",
        has_midi=False,
        notes=0,
        origin=f"raw/{piece_id}.wav",
    )


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    corpus = tmp_path / "data/prepared"
    (corpus / "audio").mkdir(parents=True)
    write_wav(corpus / "audio/good.wav", tone(2.0, 16000), 16000)
    (corpus / "audio/broken.wav").write_bytes(b"RIFF....WAVE but nothing else")
    write_wav(corpus / "audio/held_out.wav", tone(2.0, 16000), 16000)
    pieces = [_piece("good", "unlabelled"), _piece("broken", "train"), _piece("held_out", "test")]
    write_manifest(corpus, pieces)
    untrained_checkpoint(tmp_path / "models/transcriber/checkpoint.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _kill_on_first(monkeypatch, name: str) -> list[str]:
    """Make the transcribe stage's transcriber raise KeyboardInterrupt (a kill) the
    first time it reaches the file ``name``; returns the file names it is called on."""
    from stages import transcribe as stage

    calls: list[str] = []
    kill_on = {name}
    real = stage.make_transcriber

    def counting(*args, **kwargs):
        inner = real(*args, **kwargs)

        def call(path):
            calls.append(path.name)
            if path.name in kill_on:
                kill_on.clear()
                raise KeyboardInterrupt  # the stage is killed on this piece
            return inner(path)

        call.name = inner.name
        return call

    monkeypatch.setattr(stage, "make_transcriber", counting)
    return calls


def test_unreadable_audio_is_listed_and_the_rest_transcribed(workdir) -> None:
    from stages.transcribe import transcribe

    transcribe(make_params(), stage_args("transcribe"))
    out = workdir / "data/transcribed"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["id"] for p in manifest["pieces"]] == ["good"]  # test split left alone
    assert (out / manifest["pieces"][0]["midi"]).is_file()
    rejected = json.loads((out / "rejected.json").read_text())
    assert [r["id"] for r in rejected] == ["broken"] and "unreadable" in rejected[0]["reason"]
    metrics = json.loads((workdir / "reports/transcribe/metrics.json").read_text())
    assert metrics["pieces"] == 1 and metrics["rejected"] == 1
    assert not list((workdir / "data").glob(".transcribed.partial-*"))


def test_a_rerun_resumes_from_the_pieces_already_done(workdir, monkeypatch) -> None:
    from stages import transcribe as stage

    calls = _kill_on_first(monkeypatch, "good.wav")
    with pytest.raises(KeyboardInterrupt):
        stage.transcribe(make_params(), stage_args("transcribe"))
    assert calls == ["broken.wav", "good.wav"]
    assert not (workdir / "data/transcribed").exists()  # nothing that looks finished
    calls.clear()
    stage.transcribe(make_params(), stage_args("transcribe"))
    assert calls == ["good.wav"]  # broken.wav's outcome was kept
    assert json.loads((workdir / "data/transcribed/rejected.json").read_text())[0]["id"] == "broken"
    calls.clear()
    stage.transcribe(
        make_params(), stage_args("transcribe")
    )  # a finished run leaves nothing to resume from
    assert calls == ["broken.wav", "good.wav"]


def test_nothing_readable_fails_with_the_reasons(workdir) -> None:
    from stages.transcribe import transcribe

    (workdir / "data/prepared/audio/good.wav").write_bytes(b"")
    with pytest.raises(WavegenError, match="no piece could be transcribed.*good: empty file"):
        transcribe(make_params(), stage_args("transcribe"))
    assert not (workdir / "data/transcribed").exists()


def test_evaluation_without_a_test_split_scores_nothing_and_says_so(workdir, caplog) -> None:
    from stages.evaluate_transcriber import evaluate

    args = stage_args("evaluate_transcriber")
    for empty_set in (args.dev, args.reserved, args.unseen):  # as prepare_evaluation leaves them
        write_manifest(empty_set, [])
    evaluate(make_params(), args)  # the one test piece has no MIDI
    report = workdir / "reports/evaluate_transcriber"
    sets = ("dev", "test", "reserved_piano", "unseen_music")
    assert json.loads((report / "metrics.json").read_text()) == {s: {"pieces": 0} for s in sets}
    assert json.loads((report / "per_piece.json").read_text()) == {s: {} for s in sets}
    assert (report / "rolls").is_dir() and not list((report / "rolls").iterdir())
    assert "test has no piece with MIDI to score" in caplog.text
    assert "No piece to score." in (report / "tables.md").read_text()


def test_a_killed_run_is_not_resumed_over_a_re_prepared_corpus(workdir, monkeypatch) -> None:
    from stages import transcribe as stage

    _kill_on_first(monkeypatch, "good.wav")
    with pytest.raises(KeyboardInterrupt):
        stage.transcribe(make_params(), stage_args("transcribe"))
    # prepare_data reruns and the train piece is now readable audio.
    write_wav(workdir / "data/prepared/audio/broken.wav", tone(2.0, 16000), 16000)
    stage.transcribe(make_params(), stage_args("transcribe"))
    manifest = json.loads((workdir / "data/transcribed/manifest.json").read_text())
    assert [p["id"] for p in manifest["pieces"]] == ["broken", "good"]
