"""Shared fixtures: the repo root, an environment whose `python` and `dvc` are this venv's."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
from filelock import FileLock

from tools.workspace import tiny_repo_copy
from wavegen_core.data.manifest import Piece
from wavegen_core.data.pairs import KEY_CHANNELS, PEDAL_CHANNEL, ROLL_CHANNELS, ROLL_FEATURES
from wavegen_core.midi.rolls import KEY_COUNT
from wavegen_core.params import Params, validate_params

REPO_ROOT = Path(__file__).resolve().parents[1]
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"


# The files whose tests take longest, first, so that under xdist the workers start on
# them and finish together (each file runs whole on one worker: its module fixtures
# train once). The whole-pipeline test comes first: it is the longest (it shares the
# tiny run, `tiny_run`, with the flow's test).
LONGEST_FIRST = (
    "tests/integration/test_dvc_pipeline.py",
    "tests/stages/test_vocoder_stages.py",
    "tests/training/test_data_parallel.py",
    "tests/pipelines/test_worker.py",
    "tests/stages/test_transcription_stages.py",
    "tests/stages/test_music_transformer_stages.py",
    "tests/stages/test_vocoder_resume.py",
    "tests/stages/test_vqvae_stages.py",
    # It compares with the tiny run: late enough that the run is done, not waited for.
    "tests/integration/test_chaos.py",
)
# xdist hands each of N workers one file, then each a second, in turn; a worker keeps
# its last test until the next one arrives. So the file at place N goes to the worker
# that holds the whole-pipeline test and waits for it to end: a quick file goes there.
FOLLOWS_THE_LONGEST = "tests/test_seeding.py"
# The tests that run flows in their process, which leaves Prefect's service threads
# there: they run last, the longest file first, in three files so that the two workers
# end together.
PREFECT_TESTS = (
    "tests/pipelines/test_flow.py",
    "tests/pipelines/test_sharing.py",
    "tests/pipelines/test_flow_on_the_tiny_pipeline.py",
)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the 2 cores: a thread each, or their OpenMP threads spin-wait on
    # each other's core (FACTS: about 17x slower). Subprocesses inherit the setting.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def _test_file(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, the flow's tests last, each in its order. The flow's tests
    run flows in this process, which leaves Prefect's service threads behind, and those
    draw from Python's global `random` (jittered retries and reconnects): a test that
    compares a resumed checkpoint, which holds that state, byte for byte must not run
    beside them."""

    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    first = list(LONGEST_FIRST)
    first.insert(min(workers, len(first)), FOLLOWS_THE_LONGEST)

    def rank(item: pytest.Item) -> tuple[int, int]:
        file = _test_file(item.nodeid)
        if file in PREFECT_TESTS:
            return (2, PREFECT_TESTS.index(file))
        if file in first:
            return (0, first.index(file))
        return (1, 0)

    items.sort(key=rank)


if importlib.util.find_spec("xdist") is not None:

    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
        """Whole files to a worker, in the collected order (the flow's files last: nothing
        is left to run after them on either worker)."""
        from xdist.scheduler import LoadFileScheduling

        config.option.loadscopereorder = False
        return LoadFileScheduling(config, log)


# CI sets WAVEGEN_REQUIRE_TOOLS=1 (.ci/run): there a test that needs chromium or
# basic-pitch fails when it is missing, instead of passing over what needs it.
REQUIRE_TOOLS = os.environ.get("WAVEGEN_REQUIRE_TOOLS") == "1"
CHROMIUM_INSTALL = (
    "Debian's chromium is not installed (`make setup` installs it as root; "
    "otherwise `sudo apt-get install chromium`)"
)


def tool_here(found: bool, missing: str) -> bool:
    """Whether an optional tool is installed (``found``). Where it is not, CI fails the
    test with ``missing``; elsewhere the caller passes over what needs it."""
    if not found and REQUIRE_TOOLS:
        pytest.fail(f"{missing} (WAVEGEN_REQUIRE_TOOLS=1)")
    return found


def need_chromium() -> None:
    """Skip the calling test where chromium is missing; fail it in CI."""
    if not chromium_here():
        pytest.skip(CHROMIUM_INSTALL)


def need_basic_pitch() -> None:
    """Skip the calling test where basic-pitch is missing; fail it in CI."""
    from wavegen_core.models.transcription.transcribers import BASIC_PITCH_INSTALL

    if not basic_pitch_here():
        pytest.skip(BASIC_PITCH_INSTALL)


def chromium_here() -> bool:
    from tools.browser import chromium_available

    return tool_here(chromium_available(), CHROMIUM_INSTALL)


def basic_pitch_here() -> bool:
    from wavegen_core.models.transcription.transcribers import (
        BASIC_PITCH_INSTALL,
        basic_pitch_available,
    )

    return tool_here(basic_pitch_available(), BASIC_PITCH_INSTALL)


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


def dvc_status(repo: Path) -> dict[str, object]:
    """What `dvc status --json` prints for ``repo`` (stage name to its changes), from
    DVC's API in this process: the same answer without a `dvc` start-up each time."""
    from dvc.repo import Repo

    with contextlib.chdir(repo), Repo(str(repo)) as dvc_repo:
        return dict(dvc_repo.status())


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
    each run costs about a minute on 2 cores. Under xdist the first worker to ask runs
    it and the other waits for it: the stdout and lock are read from what the run wrote
    then, not from the repo, which the dvc test goes on to change."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    with FileLock(shared / "tiny_run.lock"):
        done = shared / "tiny_run.json"
        if not done.is_file():
            repo = tiny_repo_copy(REPO_ROOT, shared / "tiny" / "wavegen", venv_env)
            first = run(["dvc", "repro"], repo, {**venv_env, "PYTHONPATH": str(repo)})
            record = {"repo": str(repo), "stdout": first.stdout}
            record["lock"] = (repo / "dvc.lock").read_text()
            done.write_text(json.dumps(record))
        record = json.loads(done.read_text())
    return TinyRun(Path(record["repo"]), record["stdout"], record["lock"])
