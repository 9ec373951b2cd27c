"""train_music_transformer and compose, run as stages on a small MIDI corpus of chorales."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import torch
import yaml

from stages import compose, train_music_transformer
from tests.conftest import REPO_ROOT, stage_argv
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.data.manifest import Piece, write_manifest
from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi
from wavegen_core.midi.io import write_midi
from wavegen_core.training.metrics import read_curves

SPLITS = ["train"] * 4 + ["validation", "test"]
# Where dvc.yaml has compose write its pieces (relative to a run's directory).
COMPOSED = Path("data/composed")
SMALL_MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "context": 64}


@pytest.fixture(scope="module")
def chorales(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("chorales")
    paths = []
    for index, corpus_id in enumerate(chorale_ids()[: len(SPLITS)]):
        path = folder / f"c{index}.mid"
        write_midi(path, chorale_to_midi(corpus_id, ChoralesConfig(), seed=index))
        paths.append(path)
    return paths


def _corpus(root: Path, chorales: list[Path]) -> None:
    """data/prepared (ground truth, with splits) and data/transcribed, plus a corrupt piece."""
    for corpus, splits in (("prepared", SPLITS), ("transcribed", SPLITS[:5])):
        folder = root / "data" / corpus
        (folder / "midi").mkdir(parents=True)
        pieces = []
        for index, split in enumerate(splits):
            shutil.copy(chorales[index], folder / "midi" / f"c{index}.mid")
            pieces.append(_piece(f"c{index}", split))
        if corpus == "transcribed":
            (folder / "midi" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06 not midi")
            pieces.append(_piece("broken", "train"))
        write_manifest(folder, pieces)


def _piece(name: str, split: str) -> Piece:
    return Piece(
        id=name,
        audio=f"audio/{name}.wav",
        midi=f"midi/{name}.mid",
        duration=30.0,
        split=split,
        source="test",
        has_midi=True,
        notes=100,
        origin=name,
    )


def _params(root: Path, corpus: str, steps: int, **compose_values: object) -> None:
    section = {
        "corpus": corpus,
        "model": SMALL_MODEL,
        "train": {
            "steps": steps,
            "batch_size": 4,
            "learning_rate": 0.003,
            "checkpoint_every": 15,
            "log_every": 5,
            "eval_every": 15,
        },
        "warmup_steps": 10,
        "compose": {"unconditional": 1, "continuations": 1, "seconds": 6.0, **compose_values},
    }
    (root / "params.yaml").write_text(yaml.safe_dump({"music_transformer": section}))


def test_validation_nll_falls_and_a_resumed_run_ends_where_an_uninterrupted_one_does(
    tmp_path, chorales, monkeypatch
) -> None:
    runs = {}
    # Each run in its own process, as DVC runs a stage: the checkpoint holds Python's
    # global random state, which a thread an earlier test left in this process could move.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for name, plan in (("straight", [60]), ("resumed", [30, 60])):
        root = tmp_path / name
        _corpus(root, chorales)
        monkeypatch.chdir(root)
        for steps in plan:
            _params(root, "ground_truth", steps)
            argv = ["-m", "stages.train_music_transformer", *stage_argv("train_music_transformer")]
            done = subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
        runs[name] = load_checkpoint(Path("models/music_transformer/checkpoint.pt"))
    _, nll = read_curves(tmp_path / "straight" / Path("reports/train_music_transformer"))[
        "eval/nll"
    ]
    assert len(nll) == 4 and nll[-1] < nll[0] - 0.5, nll
    straight, resumed = runs["straight"], runs["resumed"]
    assert straight["step"] == resumed["step"] == 60
    for name, tensor in straight["state"].items():
        assert torch.equal(tensor, resumed["state"][name]), name
    checkpoint = Path("models/music_transformer/checkpoint.pt")
    assert (tmp_path / "straight" / checkpoint).read_bytes() == (
        tmp_path / "resumed" / checkpoint
    ).read_bytes()


def test_transcribed_corpus_skips_broken_midi_and_compose_writes_pieces_and_metrics(
    tmp_path, chorales, monkeypatch
) -> None:
    _corpus(tmp_path, chorales)
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, "transcribed", 30, primer_seconds=3.0)
    assert train_music_transformer.main(stage_argv("train_music_transformer")) == 0
    corpus = json.loads((Path("reports/train_music_transformer") / "corpus.json").read_text())
    assert corpus["train"] == ["c0", "c1", "c2", "c3"] and corpus["validation"] == ["c4"]
    assert [entry["piece"] for entry in corpus["rejected"]] == ["broken"]
    assert "unreadable MIDI" in corpus["rejected"][0]["reason"]

    assert compose.main(stage_argv("compose")) == 0
    manifest = json.loads((COMPOSED / "manifest.json").read_text())["pieces"]
    assert [p["kind"] for p in manifest] == ["unconditional", "continuation"]
    for record in manifest:
        midi = pretty_midi.PrettyMIDI(str(COMPOSED / record["midi"]))
        assert midi.instruments and midi.instruments[0].notes
        assert (COMPOSED / "rolls" / f"{record['id']}.png").read_bytes()[:4] == b"\x89PNG"
    # The continuation starts with the test piece's first 3 seconds.
    continuation = manifest[1]
    assert continuation["primer"] == "c5" and continuation["primer_events"] > 0
    primer_notes = pretty_midi.PrettyMIDI(str(chorales[5])).instruments[0].notes
    composed = pretty_midi.PrettyMIDI(str(COMPOSED / continuation["midi"]))
    onsets = sorted((round(n.start / 0.01), n.pitch) for n in composed.instruments[0].notes)
    expected = sorted((round(n.start / 0.01), n.pitch) for n in primer_notes if n.start < 2.9)
    assert [onset for onset in onsets if onset[0] < 290] == expected

    metrics = json.loads((Path("reports/compose") / "metrics.json").read_text())
    test = metrics["test"]
    assert test["pieces"] == 1 and math.isfinite(test["nll_per_event"])
    by_kind = test["nll_by_event_kind"]
    assert {"NOTE_ON", "NOTE_OFF", "TIME_SHIFT", "VELOCITY", "END"} == set(by_kind)
    # The overall NLL is the event-weighted mean of the kinds': it lies between them.
    assert min(by_kind.values()) <= test["nll_per_event"] <= max(by_kind.values())
    assert 0 <= metrics["unconditional"]["pitch_class_histogram_distance"] <= 1
    assert metrics["continuations"]["reference_pitch_range"] > 0
    assert not list(tmp_path.glob("data/.composed*"))  # no staging directory left behind


def test_compose_without_a_test_split_writes_unconditional_pieces_only(
    tmp_path, chorales, monkeypatch
) -> None:
    _corpus(tmp_path, chorales)
    manifest = tmp_path / "data/prepared/manifest.json"
    manifest.write_text(manifest.read_text().replace('"test"', '"train"'))
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, "ground_truth", 2)
    assert train_music_transformer.main(stage_argv("train_music_transformer")) == 0
    assert compose.main(stage_argv("compose")) == 0
    pieces = json.loads((COMPOSED / "manifest.json").read_text())["pieces"]
    assert [p["kind"] for p in pieces] == ["unconditional"]
    assert "test" not in json.loads((Path("reports/compose") / "metrics.json").read_text())
