"""A stage's share of the cores: what a runner sets and what a stage applies."""

from __future__ import annotations

import os

import pytest
import torch

from stages._common import run_stage
from wavegen_core import threads
from wavegen_core.errors import WavegenError


def test_the_share_divides_the_cores_and_never_drops_below_one() -> None:
    assert threads.share(16, 4) == 4
    assert threads.share(2, 2) == 1
    assert threads.share(2, 3) == 1
    assert threads.share(8, 0) == 8


def test_a_bad_share_names_the_variable() -> None:
    assert threads.requested({}) is None
    assert threads.requested({"WAVEGEN_THREADS": " 3 "}) == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(WavegenError, match="WAVEGEN_THREADS = .*whole number of 1 or more"):
            threads.requested({"WAVEGEN_THREADS": bad})


def test_the_runner_asks_openmp_to_wait_passively_only_beside_other_stages(monkeypatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("WAVEGEN_THREADS", raising=False)
    monkeypatch.setattr(threads, "machine_cores", lambda: 4)
    assert threads.runner_environment(2) == {"WAVEGEN_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    assert threads.runner_environment(4) == {"WAVEGEN_THREADS": "4"}  # alone: spinning pays
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.runner_environment(1)["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice


def test_a_count_the_user_set_pins_every_stage(monkeypatch) -> None:
    monkeypatch.setenv("WAVEGEN_THREADS", "2")
    assert threads.runner_environment(1)["WAVEGEN_THREADS"] == "2"


@pytest.fixture()
def torch_threads(monkeypatch):
    """Torch's count and the pool variables as they were, after the test."""
    before = torch.get_num_threads()
    for name in threads.POOL_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def params_file(repo_root):
    return repo_root / "params.yaml"


def test_a_stage_applies_its_share_before_its_body(monkeypatch, params_file, torch_threads) -> None:
    seen = []
    monkeypatch.setenv("WAVEGEN_THREADS", "2")
    code = run_stage(
        "probe",
        {},
        lambda params, args: seen.append(torch.get_num_threads()),
        ["--params", str(params_file)],
    )
    assert code == 0 and seen == [2]
    assert os.environ["OMP_NUM_THREADS"] == "2"  # torchrun's ranks inherit the share


def test_a_stage_started_by_hand_keeps_torchs_own_count(
    monkeypatch, params_file, torch_threads
) -> None:
    monkeypatch.delenv("WAVEGEN_THREADS", raising=False)
    torch.set_num_threads(1)
    seen = []
    probe = lambda p, a: seen.append(torch.get_num_threads())  # noqa: E731
    run_stage("probe", {}, probe, ["--params", str(params_file)])
    assert seen == [1]


def test_a_bad_share_fails_the_stage_before_its_body(monkeypatch, params_file, capsys) -> None:
    monkeypatch.setenv("WAVEGEN_THREADS", "all")
    seen = []
    code = run_stage("probe", {}, lambda p, a: seen.append(1), ["--params", str(params_file)])
    assert code == 1 and not seen
    assert "WAVEGEN_THREADS = 'all'" in capsys.readouterr().err


def test_torchrun_ranks_split_the_share(monkeypatch, torch_threads) -> None:
    monkeypatch.setenv("WAVEGEN_THREADS", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.apply() == 2 and torch.get_num_threads() == 2


def test_a_stage_follows_the_share_its_runner_rewrites(
    monkeypatch, tmp_path, torch_threads
) -> None:
    share_file = tmp_path / "stage.threads"
    monkeypatch.setenv("WAVEGEN_THREADS_FILE", str(share_file))
    assert threads.follow_share() is None  # no file yet: the count stays
    threads.write_share(share_file, 2)
    assert threads.follow_share() == 2 and torch.get_num_threads() == 2
    assert threads.follow_share() is None  # unchanged: one stat, nothing more
    threads.write_share(share_file, 1)  # the stage beside it started again
    assert threads.follow_share() == 1 and torch.get_num_threads() == 1
    assert not list(tmp_path.glob("*.partial"))


def test_a_pinned_count_is_not_followed(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WAVEGEN_THREADS", "2")
    assert "WAVEGEN_THREADS_FILE" not in threads.runner_environment(1, tmp_path / "s.threads")
    monkeypatch.delenv("WAVEGEN_THREADS")
    environment = threads.runner_environment(1, tmp_path / "s.threads")
    assert environment["WAVEGEN_THREADS_FILE"] == str(tmp_path / "s.threads")
