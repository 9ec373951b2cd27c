"""`transcribe` and `evaluate_transcriber` at the tiny profile, from prepare_data on, each
stage run as `dvc repro` would (in this process: the graph itself has its own test).

The corpus is a folder: three MIDI files (rendered by prepare_data into one train,
one validation and one test piece) and one audio file without MIDI (the unlabelled
pool). basic-pitch is scored beside our model when the extra is installed.

The transcriber trains for 1,000 steps on one-second excerpts (about 40 s on one core):
the fewest after which the tiny model hears the test piece clearly above its initial
weights (0.27 to 0.43 onset F1 against 0.03, at one and two threads). At 300 steps it
decodes nothing at all, at any learning rate tried.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from stages import (
    evaluate_transcriber,
    prepare_data,
    prepare_evaluation,
    render_variants,
    train_transcriber,
    transcribe,
)
from tests.conftest import basic_pitch_here, need_basic_pitch, run, stage_argv, tone
from tools.workspace import set_data_params, set_params, tiny_repo_copy
from wavegen_core.audio.io import load_audio, write_wav
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.manifest import read_manifest
from wavegen_core.evaluation.synthesis import score_renders, transcription_consistency
from wavegen_core.evaluation.transcription import METRIC_NAMES
from wavegen_core.midi.io import load_midi
from wavegen_core.midi.rolls import piano_notes
from wavegen_core.models.transcription.onsets_frames import SPEC, OnsetsAndFrames
from wavegen_core.params import load_params
from wavegen_core.seeding import seed_everything

RATE = 16000

pytestmark = pytest.mark.slow


ROOTS = list(range(48, 76, 2))  # fourteen chords, C3 up to C#5's fifth


def _chords(roots: list[int], step: float) -> pretty_midi.PrettyMIDI:
    """Fifths on ``roots``, one every ``step`` seconds: easy for any transcriber, not for an
    untrained one. The three pieces play the same chords in another order and tempo, so
    the one piece trained on teaches the pitches the other two are scored on."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for index, root in enumerate(roots):
        start, end = index * step, index * step + step * 0.9
        for pitch in (root, root + 7):
            piano.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=start, end=end))
    midi.instruments.append(piano)
    return midi


def _pieces() -> dict[str, pretty_midi.PrettyMIDI]:
    mixed = list(ROOTS)
    random.Random(3).shuffle(mixed)
    return {
        "up": _chords(ROOTS, 0.45),
        "down": _chords(ROOTS[::-1], 0.4),
        "mixed": _chords(mixed, 0.5),
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory, repo_root, venv_env) -> Path:
    repo = tiny_repo_copy(repo_root, tmp_path_factory.mktemp("stages") / "wavegen", venv_env)
    raw = repo / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, midi in _pieces().items():
        midi.write(str(raw / f"{name}.mid"))
    write_wav(raw / "unlabelled.wav", tone(4.0, 16000, freq=261.63), 16000)
    set_data_params(repo, source="folder", root="data/raw", max_pieces=None)
    set_params(repo, "transcription", compare_basic_pitch=True, segment_seconds=1.0)
    training = {"steps": 1000, "learning_rate": 3e-3, "checkpoint_every": 500}
    training |= {"eval_every": 500, "log_every": 100}
    set_params(repo, "transcription", **{f"train.{k}": v for k, v in training.items()})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        for stage in (
            prepare_data,
            render_variants,
            prepare_evaluation,
            train_transcriber,
            transcribe,
            evaluate_transcriber,
        ):
            name = stage.__name__.removeprefix("stages.")
            assert stage.main(stage_argv(name)) == 0
    return repo


def _manifest(repo: Path, corpus: str) -> dict:
    return json.loads((repo / corpus / "manifest.json").read_text())


def test_transcribe_covers_the_unlabelled_pool_the_train_and_the_validation_split(repo) -> None:
    prepared = {p["id"]: p for p in _manifest(repo, "data/prepared")["pieces"]}
    transcribed = _manifest(repo, "data/transcribed")
    assert transcribed["transcriber"] == "model"
    wanted = {i for i, p in prepared.items() if p["split"] != "test"}
    assert {p["id"] for p in transcribed["pieces"]} == wanted
    assert {prepared[i]["split"] for i in wanted} == {"train", "validation", "unlabelled"}
    for piece in transcribed["pieces"]:
        midi = load_midi(repo / "data/transcribed" / piece["midi"], allow_empty=True)
        assert sum(len(i.notes) for i in midi.instruments) == piece["notes"]
        # The record still leads to the audio it was transcribed from.
        assert (repo / "data/transcribed" / piece["audio"]).resolve().is_file()
    assert json.loads((repo / "data/transcribed/rejected.json").read_text()) == []
    metrics = json.loads((repo / "reports/transcribe/metrics.json").read_text())
    assert metrics["pieces"] == len(wanted) and metrics["backend"] == "model"
    # The train and the validation piece have reference MIDI to agree with.
    assert metrics["agreement_with_reference"]["pieces"] == 2
    assert (repo / "reports/transcribe/example.png").stat().st_size > 10_000


def test_evaluation_scores_every_measure_on_each_set(repo, venv_env) -> None:
    report = repo / "reports/evaluate_transcriber"
    metrics = json.loads((report / "metrics.json").read_text())
    per_piece = json.loads((report / "per_piece.json").read_text())
    assert list(metrics) == ["dev", "test", "reserved_piano", "unseen_music"]
    prepared = _manifest(repo, "data/prepared")["pieces"]
    test_ids = [p["id"] for p in prepared if p["split"] == "test"]
    # The dev set: the validation piece rendered again on a training piano, and an etude
    # no training run reaches; never the reserved piano.
    validation_ids = [p["id"] for p in prepared if p["split"] == "validation"]
    dev = _manifest(repo, "data/evaluation/dev")["pieces"]
    dev_ids = [p["id"] for p in dev]
    assert sorted(dev_ids) == ["dev-etude-0", f"{validation_ids[0]}.dev0"]
    assert not any("MuseScore" in p["rendering"]["soundfont"] for p in dev)
    # The reserved piano plays the test split again; the unseen music is the params' pieces.
    reserved = _manifest(repo, "data/evaluation/reserved_piano")["pieces"]
    assert [p["id"] for p in reserved] == test_ids
    assert all("MuseScore" in p["rendering"]["soundfont"] for p in reserved)
    unseen = _manifest(repo, "data/evaluation/unseen_music")["pieces"]
    assert len(unseen) == 2 and all(p["origin"].startswith("music21:") for p in unseen)
    names = ["model", "basic_pitch"] if basic_pitch_here() else ["model"]
    for name, ids in (
        ("dev", dev_ids),
        ("test", test_ids),
        ("reserved_piano", test_ids),
        ("unseen_music", [p["id"] for p in unseen]),
    ):
        assert metrics[name]["pieces"] == len(ids) >= 1
        assert sorted(per_piece[name]) == sorted(ids)
        for who in names:
            assert set(metrics[name][who]) == set(METRIC_NAMES)
            assert all(0.0 <= value <= 1.0 for value in metrics[name][who].values())
        first = sorted(ids)[0]
        assert (report / "rolls" / name / f"{first}.png").stat().st_size > 10_000
    assert (
        per_piece["test"][test_ids[0]]["model"]["onset_f1"] == metrics["test"]["model"]["onset_f1"]
    )
    table = (report / "tables.md").read_text()
    assert table.count("## ") == 4 and "| model |" in table
    env = {**venv_env, "PYTHONPATH": str(repo)}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    evaluated = shown[""]["data"]["reports/evaluate_transcriber/metrics.json"]["data"]
    assert set(names) <= set(evaluated["unseen_music"])


def _test_pieces(repo: Path) -> list[tuple[np.ndarray, list[pretty_midi.Note]]]:
    """The prepared test split's audio and notes."""
    corpus = repo / "data/prepared"
    return [
        (load_audio(corpus / piece.audio, RATE), piano_notes(load_midi(corpus / str(piece.midi))))
        for piece in read_manifest(corpus)
        if piece.split == "test"
    ]


def _trained_and_initial(repo: Path) -> tuple[OnsetsAndFrames, OnsetsAndFrames]:
    """The trained transcriber and the same model at its initial weights: built from the
    checkpoint's config after its seed, as training starts."""
    checkpoint = load_checkpoint(repo / "models/transcriber/checkpoint.pt")
    seed_everything(checkpoint["config"]["seed"])
    initial = SPEC.build(checkpoint["config"]).eval()
    return SPEC.from_checkpoint(checkpoint), initial


def test_the_trained_transcriber_hears_the_test_piece_well_above_its_initial_weights(
    repo,
) -> None:
    trained, initial = _trained_and_initial(repo)
    config = load_params(repo / "params.yaml").transcription
    pieces = _test_pieces(repo)
    scores = {}
    for name, model in (("trained", trained), ("initial", initial)):
        scores[name] = float(
            np.mean(
                [
                    transcription_consistency(audio, notes, model, config, RATE)
                    for audio, notes in pieces
                ]
            )
        )
    # What evaluate_transcriber reported is what this model scores.
    metrics = json.loads((repo / "reports/evaluate_transcriber/metrics.json").read_text())
    assert scores["trained"] == pytest.approx(metrics["test"]["model"]["onset_f1"], abs=5e-5)
    assert scores["trained"] >= scores["initial"] + 0.1, scores


def test_our_consistency_metric_scores_a_late_render_and_the_wrong_pieces_midi_apart(
    repo,
) -> None:
    """The trained transcriber as the synthesis metric uses it: the test piece's audio
    against its own notes scores above the same audio 200 ms late (the onset tolerance is
    50 ms) and above the notes of another piece with the same chords in another order."""
    trained, _ = _trained_and_initial(repo)
    config = load_params(repo / "params.yaml").transcription
    [(truth, notes)] = _test_pieces(repo)
    late = np.concatenate([np.zeros(int(0.2 * RATE), np.float32), truth])[: len(truth)]
    scores = score_renders(
        {"same": truth.copy(), "late": late}, notes, truth, trained, config, RATE
    )
    assert scores["same"]["onset_f1"] == scores["true_audio"]["onset_f1"]
    assert scores["late"]["onset_f1"] <= scores["same"]["onset_f1"] - 0.1, scores
    corpus = repo / "data/prepared"
    other = next(p for p in read_manifest(corpus) if p.split == "train")
    wrong = piano_notes(load_midi(corpus / str(other.midi)))
    mismatched = score_renders({"same": truth}, wrong, None, trained, config, RATE)
    assert mismatched["same"]["onset_f1"] <= scores["same"]["onset_f1"] - 0.1, mismatched


def test_basic_pitch_transcribes_the_test_chords_and_can_be_the_backend(repo) -> None:
    need_basic_pitch()
    metrics = json.loads((repo / "reports/evaluate_transcriber/metrics.json").read_text())
    assert metrics["test"]["basic_pitch"]["onset_f1"] > 0.8  # plain piano chords: easy for it
    set_params(repo, "transcription", backend="basic_pitch")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        assert transcribe.main(stage_argv("transcribe")) == 0
    assert _manifest(repo, "data/transcribed")["transcriber"] == "basic_pitch"
    agreement = json.loads((repo / "reports/transcribe/metrics.json").read_text())
    assert agreement["agreement_with_reference"]["onset_f1"] > 0.8


def test_without_a_validation_split_the_scores_say_they_are_on_training_pieces(
    repo, tmp_path
) -> None:
    """A corpus too small to hold pieces out is still trained, and its evaluation curves
    are logged as eval_on_train/..., never as held-out scores."""
    import shutil

    corpus = tmp_path / "prepared"
    shutil.copytree(repo / "data/prepared", corpus)
    manifest = _manifest(corpus, ".")
    for piece in manifest["pieces"]:
        piece["split"] = "train" if piece["split"] == "validation" else piece["split"]
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    # A few steps do: what is checked is where the curves are logged, not what they say.
    params = tmp_path / "params.yaml"
    shutil.copy(repo / "params.yaml", params)
    set_params(tmp_path, "transcription", **{"train.steps": 4, "train.eval_every": 2})
    argv = ["--corpus", str(corpus), "--variants", str(repo / "data/variants")]
    argv += ["--checkpoint", str(tmp_path / "c.pt"), "--reports", str(tmp_path / "reports")]
    argv += ["--params", str(params)]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        assert train_transcriber.main(argv) == 0
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert "eval_on_train/onset_f1" in metrics
    assert not [key for key in metrics if key.startswith("eval/")]
