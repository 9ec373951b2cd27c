"""Shared fixtures: the repo root, an environment whose `python` and `dvc` are this venv's."""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
import yaml

from wavegen_core.data.manifest import Piece
from wavegen_core.data.pairs import KEY_CHANNELS, PEDAL_CHANNEL, ROLL_CHANNELS, ROLL_FEATURES
from wavegen_core.midi.rolls import KEY_COUNT
from wavegen_core.params import Params, validate_params

REPO_ROOT = Path(__file__).resolve().parents[1]
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The flow's tests last, in their order. They run flows in this process, which
    leaves Prefect's service threads behind, and those draw from Python's global
    `random` (jittered retries and reconnects): a test that compares a resumed
    checkpoint, which holds that state, byte for byte must not run beside them."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/pipelines/"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def venv_env() -> dict[str, str]:
    """The environment a subprocess needs to find this venv's `python`, `dvc`, `wavegen`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DO_NOT_TRACK"] = "1"
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@functools.cache
def _stage_commands() -> dict[str, list[str]]:
    """Every stage's command line as dvc.yaml writes it (foreach items substituted)."""
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        return {stage.name: shlex.split(stage.cmd) for stage in repo.index.stages}


def stage_argv(stage: str, *extra: str) -> list[str]:
    """The arguments dvc.yaml gives ``stage`` (``train_vocoder@gan``...), after
    ``python -m stages.<module>``, then ``extra``: a test runs a stage module's ``main``
    with the paths the pipeline uses, written only in dvc.yaml."""
    command = _stage_commands()[stage]
    return [*command[3:], *extra]


def stage_args(stage: str) -> argparse.Namespace:
    """The parsed arguments dvc.yaml gives a stage that runs once (not a foreach item), for
    tests that call the stage's body with params of their own."""
    from stages._common import stage_parser

    module = importlib.import_module(f"stages.{stage}")
    return stage_parser(stage, module.PATHS).parse_args(stage_argv(stage))


def make_params(**sections: object) -> Params:
    """Default params with the given sections (nested dicts) overriding, validated."""
    return validate_params(dict(sections))


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def scale_midi(
    pitches: list[int], step: float = 0.25, velocity: int = 80
) -> pretty_midi.PrettyMIDI:
    """A short monophonic MIDI: one note per pitch, ``step`` seconds each."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for index, pitch in enumerate(pitches):
        piano.notes.append(
            pretty_midi.Note(
                velocity=velocity, pitch=pitch, start=index * step, end=(index + 1) * step
            )
        )
    midi.instruments.append(piano)
    return midi


def note_roll(
    frames: int, *notes: tuple[int, int, int, float], pedal: tuple[int, int] | None = None
) -> torch.Tensor:
    """A conditioning roll (1, ROLL_CHANNELS, frames) of notes (key, onset frame, end
    frame, velocity), keys counted from A0, with the sustain pedal down over the frames
    ``pedal`` (first, end) if given."""
    keys = torch.zeros(1, len(ROLL_FEATURES), KEY_COUNT, frames)
    for key, start, end, velocity in notes:
        keys[0, 0, key, start] = 1.0
        keys[0, 1, key, start:end] = 1.0
        keys[0, 2, key, start:end] = velocity
    roll = torch.zeros(1, ROLL_CHANNELS, frames)
    roll[:, :KEY_CHANNELS] = keys.reshape(1, KEY_CHANNELS, frames)
    if pedal is not None:
        roll[0, PEDAL_CHANNEL, pedal[0] : pedal[1]] = 1.0
    return roll


def tone(seconds: float, sample_rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def _excerpt(midi: pretty_midi.PrettyMIDI, seconds: float) -> pretty_midi.PrettyMIDI:
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < seconds]
        for note in instrument.notes:
            note.end = min(note.end, seconds)
    return midi


def write_corpus_piece(
    root: Path, name: str, audio: np.ndarray, midi: pretty_midi.PrettyMIDI, rate: int
) -> Piece:
    """Write one train piece of a prepared corpus under ``root`` (its WAV and MIDI, laid
    out as prepare_data lays them out) and return its manifest record."""
    from wavegen_core.audio.io import write_wav
    from wavegen_core.midi.io import write_midi

    write_wav(root / "audio" / f"{name}.wav", audio.astype(np.float32), rate)
    write_midi(root / "midi" / f"{name}.mid", midi)
    return Piece(
        id=name,
        audio=f"audio/{name}.wav",
        midi=f"midi/{name}.mid",
        duration=len(audio) / rate,
        split="train",
        source="test",
        has_midi=True,
        notes=sum(len(i.notes) for i in midi.instruments),
        origin="test",
    )


def write_chorale_corpus(prepared: Path, splits: list[str], seconds: float, rate: int) -> None:
    """A prepared corpus of the first ``seconds`` of ``len(splits)`` Bach chorales,
    rendered with FluidSynth as the data stage does, piece i in ``splits[i]``."""
    from wavegen_core.audio.io import write_wav
    from wavegen_core.audio.render import RenderConfig, render_midi
    from wavegen_core.data.manifest import Piece, write_manifest
    from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi
    from wavegen_core.midi.io import write_midi

    render = RenderConfig()
    pieces = []
    for index, corpus_id in enumerate(chorale_ids()[: len(splits)]):
        midi = _excerpt(chorale_to_midi(corpus_id, ChoralesConfig(), seed=index), seconds)
        audio = render_midi(
            midi,
            sample_rate=rate,
            soundfont=render.soundfont,
            release_tail=render.release_tail,
            peak=render.peak,
        )
        name = f"c{index}"
        write_midi(prepared / "midi" / f"{name}.mid", midi)
        write_wav(prepared / "audio" / f"{name}.wav", audio, rate)
        pieces.append(
            Piece(
                id=name,
                audio=f"audio/{name}.wav",
                midi=f"midi/{name}.mid",
                duration=len(audio) / rate,
                split=splits[index],
                source="test",
                has_midi=True,
                notes=sum(len(i.notes) for i in midi.instruments),
                origin=corpus_id,
            )
        )
    write_manifest(prepared, pieces)


def untrained_checkpoint(path: Path) -> Path:
    """A transcriber checkpoint at step 0 (default tiny config), as train_transcriber writes."""
    import torch

    from wavegen_core.checkpoint import save_checkpoint
    from wavegen_core.models.transcription.config import TranscriberModelConfig
    from wavegen_core.models.transcription.onsets_frames import OnsetsAndFrames

    config = TranscriberModelConfig()
    model = OnsetsAndFrames(config)
    save_checkpoint(
        path,
        model,
        torch.optim.Adam(model.parameters()),
        step=0,
        config={"model": config.model_dump(mode="json")},
        metrics={},
    )
    return path


def copy_worktree(source: Path, target: Path) -> None:
    """Copy what git would hand a fresh clone (tracked and untracked-but-not-ignored files)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = source / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


def set_data_params(repo: Path, **data: object) -> None:
    set_params(repo, "data", **data)


def set_params(repo: Path, section: str, **values: object) -> None:
    """Update keys of one params.yaml section (dotted for nesting: ``train.steps``)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        target = params[section]
        for parent in parents:
            target = target[parent]
        target[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def tiny_repo_copy(source: Path, target: Path, env: dict[str, str]) -> Path:
    """A git repo holding the working tree at a 3-piece corpus and 4-step trainings,
    with no lock file yet."""
    copy_worktree(source, target)
    (target / "dvc.lock").unlink(missing_ok=True)
    set_data_params(target, max_pieces=3, num_workers=2)
    # A few real training steps: enough to exercise checkpoints, metrics and plots.
    steps = {"steps": 4, "checkpoint_every": 2, "log_every": 1, "eval_every": 2}
    set_params(target, "transcription", **{f"train.{k}": v for k, v in steps.items()})
    # basic-pitch's side-by-side score has a test of its own (tests/stages).
    set_params(target, "transcription", compare_basic_pitch=False)
    symbolic = {
        "train.steps": 4,
        "train.checkpoint_every": 2,
        "train.log_every": 1,
        "train.eval_every": 2,
        "warmup_steps": 2,
        "compose.seconds": 4.0,
        "compose.primer_seconds": 2.0,
    }
    set_params(target, "music_transformer", **symbolic)
    # No vocoder family: the vocoder stages cost every whole-pipeline run a minute;
    # tests/integration turns the flow's and DDSP's on, tests/stages trains them all.
    vocoder: dict[str, object] = {"families": []}
    for family in ("wavenet", "flow", "ddsp", "gan"):
        vocoder.update({f"{family}.train.{k}": v for k, v in steps.items()})
        vocoder[f"{family}.train.eval_every"] = 4
    # The judge's scores have a test of their own (tests/stages).
    synthesis = {"test_pieces": 1, "composed_pieces": 1, "max_seconds": 0.25, "judge": False}
    vocoder.update({f"synthesize.{k}": v for k, v in synthesis.items()})
    set_params(target, "vocoder", **vocoder)
    # The learnt hierarchy at a few steps, one short sample and one test second.
    hierarchy: dict[str, object] = {
        f"tiers.{tier}.train.{k}": v for tier in ("1", "2") for k, v in steps.items()
    }
    hierarchy.update({f"prior.train.{k}": v for k, v in steps.items()})
    sampling = {"samples": 1, "seconds": 0.25, "reconstruct_pieces": 1, "reconstruct_seconds": 1.0}
    hierarchy.update({f"sample.{k}": v for k, v in sampling.items()})
    set_params(target, "vqvae", **hierarchy)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        run(cmd, target, env)
    return target


@dataclass(frozen=True)
class TinyRun:
    """A tiny repo copy after its first `dvc repro`: the repo, that run's stdout, and
    the lock file it wrote (kept, since tests go on to change the repo)."""

    repo: Path
    stdout: str
    lock: str


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, venv_env) -> TinyRun:
    """One real `dvc repro` of the tiny pipeline, shared by the whole-pipeline tests (the
    dvc test goes on from it; the Prefect flow's outputs are compared with its lock):
    each run costs about a minute on 2 cores."""
    repo = tiny_repo_copy(REPO_ROOT, tmp_path_factory.mktemp("tiny") / "wavegen", venv_env)
    first = run(["dvc", "repro"], repo, {**venv_env, "PYTHONPATH": str(repo)})
    return TinyRun(repo, first.stdout, (repo / "dvc.lock").read_text())
