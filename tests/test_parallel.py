"""wavegen_core.parallel: process counts, batch shares, and the synchronised batch norm
over two gloo processes; the `node` deployment that trains on a whole machine's GPUs."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from torch import nn

from tests.conftest import REPO_ROOT
from wavegen_core import parallel

CPU = torch.device("cpu")


def test_process_count_auto_takes_the_gpus_that_split_the_batch(monkeypatch) -> None:
    assert parallel.process_count(3, CPU, 8) == 3
    assert parallel.process_count("auto", CPU, 8) == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    cuda = torch.device("cuda")
    assert parallel.process_count("auto", cuda, 16) == 8
    assert parallel.process_count("auto", cuda, 12) == 6  # 8 does not divide 12; 6 does
    assert parallel.process_count("auto", cuda, 7) == 7


def test_each_rank_gets_its_contiguous_share_of_every_tensor() -> None:
    batch = {"audio": torch.arange(8).view(4, 2), "parts": (torch.arange(4), "name")}
    first = parallel.shard(batch, parallel.World(0, 2))
    second = parallel.shard(batch, parallel.World(1, 2))
    assert first["audio"].tolist() == [[0, 1], [2, 3]]
    assert second["audio"].tolist() == [[4, 5], [6, 7]]
    assert second["parts"][0].tolist() == [2, 3] and second["parts"][1] == "name"
    assert parallel.shard(batch, parallel.ALONE) is batch


def test_alone_the_synchronised_norm_is_batch_norm() -> None:
    torch.manual_seed(0)
    plain, synced = nn.BatchNorm2d(3), parallel.SyncBatchNorm(3)
    synced.load_state_dict(plain.state_dict())
    inputs = torch.randn(4, 3, 5, 6)
    assert torch.equal(plain(inputs), synced(inputs))
    assert torch.equal(plain.running_var, synced.running_var)


def _two_ranks(rank: int, port: int, inputs: torch.Tensor, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        norm = parallel.SyncBatchNorm(3)
        share = inputs[rank * 2 : (rank + 1) * 2].clone().requires_grad_(True)
        out = norm(share)
        weights = torch.arange(inputs.numel()).view_as(inputs)[rank * 2 : (rank + 1) * 2]
        (out * weights).sum().backward()  # the ranks' losses add up to the whole batch's
        denominator = parallel.global_denominator(torch.tensor(float(rank + 1)))
        results[rank] = (out.detach(), share.grad, norm.running_var.clone(), float(denominator))
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_normalise_by_the_global_batch(tmp_path) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 5, 6)
    whole = inputs.clone().requires_grad_(True)
    reference = nn.BatchNorm2d(3)
    out = reference(whole)
    (out * torch.arange(out.numel()).view_as(out)).sum().backward()

    results = mp.Manager().dict()
    port = 29500 + os.getpid() % 1000
    mp.spawn(_two_ranks, args=(port, inputs, results), nprocs=2, join=True)
    halves = [results[0], results[1]]
    torch.testing.assert_close(torch.cat([h[0] for h in halves]), out.detach())
    # The gradient flows through the global statistics too, not only the local ones.
    grad = whole.grad
    assert grad is not None
    grads = torch.cat([h[1] for h in halves])
    torch.testing.assert_close(grads, grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(halves[0][2], reference.running_var)
    # Counts 1 and 2 on the ranks: 3 globally, over 2 ranks.
    assert halves[0][3] == halves[1][3] == pytest.approx(1.5)


def test_relaunch_runs_the_module_as_n_processes_and_returns_a_failed_ones_exit_code(
    tmp_path, monkeypatch
) -> None:
    """The agent runs in this process; each rank is ``python -m module argv`` with
    torchrun's variables. A rank that exits 2 (argparse's bad usage) makes it 2."""
    (tmp_path / "rank_writes.py").write_text(
        "import os, pathlib, sys\n"
        "out = pathlib.Path(sys.argv[1]) / os.environ['RANK']\n"
        "out.write_text(os.environ['WORLD_SIZE'])\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert parallel.relaunch("rank_writes", [str(tmp_path)], 2, "test.nproc") == 0
    written = {p.name: p.read_text() for p in tmp_path.iterdir() if p.name.isdigit()}
    assert written == {"0": "2", "1": "2"}
    assert parallel.relaunch("json.tool", ["--no-such-flag"], 2, "test.nproc") == 2


def test_the_node_deployment_sees_every_gpu_and_runs_one_gpu_stage_at_a_time() -> None:
    deployments = {
        d["name"]: d
        for d in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    }
    node = deployments["node"]
    assert node["parameters"] == {"share": True, "gpu_slots": 1}
    assert "CUDA_VISIBLE_DEVICES" not in node["work_pool"]["job_variables"]["env"]
    assert deployments["gpu"]["work_pool"]["job_variables"]["env"]["CUDA_VISIBLE_DEVICES"] == "0"
