"""The Prefect flow on the tiny pipeline, against a real Prefect API and the real `dvc`:
its outputs are `dvc repro`'s (the shared tiny run's). A file of its own, so that the
Prefect tests, which run last, share the two workers evenly."""

from __future__ import annotations

import pytest
import torch
import yaml

from pipelines.flow import pipeline
from tests.conftest import TinyRun
from tools.workspace import tiny_repo_copy

pytestmark = pytest.mark.slow


def _outs(lock_text: str) -> dict[str, str]:
    """Every output's hash, but for wall-clock measurements (``speed.json``), which
    differ between any two runs."""
    lock = yaml.safe_load(lock_text)
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage["outs"]
        if not out["path"].endswith("/speed.json")
    }


# The first stages of the tiny pipeline, down to a per-tier (foreach) stage: each stage
# costs the flow seconds of start-up, so the whole pipeline would cost the suite
# minutes; the graph is tested whole in test_dag, every stage by `dvc repro` in
# tests/integration, and a second run's skipping in tests/pipelines/test_flow.py.
FLOW_TARGETS = ["train_vqvae@1"]


def test_flow_matches_dvc_repro_on_the_tiny_pipeline(
    tmp_path, repo_root, prefect_api, venv_env, tiny_run: TinyRun, monkeypatch
):
    by_flow = tiny_repo_copy(repo_root, tmp_path / "by_flow", venv_env)
    # The shared run's stages computed on this process's thread count (one under xdist:
    # tests/conftest.py); a training stage's bytes depend on the count, so the flow is
    # pinned to it. Without the pin the flow gives each stage its share (both cores on
    # 2), and train_vqvae@1's checkpoint differs.
    monkeypatch.setenv("WAVEGEN_THREADS", str(torch.get_num_threads()))
    state = pipeline(repo=str(by_flow), targets=FLOW_TARGETS, return_state=True)
    outcomes = state.result()
    assert [(o.stage, o.status) for o in outcomes] == [
        ("prepare_data", "ran"), ("train_vqvae@1", "ran")
    ]  # fmt: skip
    flow_outs = _outs((by_flow / "dvc.lock").read_text())
    # What `dvc repro` of the same copy wrote for those stages.
    dvc_outs = _outs(tiny_run.lock)
    assert flow_outs == {path: dvc_outs[path] for path in flow_outs}
    assert {"data/prepared", "models/vqvae/1/checkpoint.pt"} <= set(flow_outs)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    this_run = ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=this_run))
    artifacts = {artifact.key: artifact for artifact in found}
    assert "reports/prepare_data/metrics.json" in str(artifacts["dvc-metrics"].data)
    assert "reports/prepare_data/example.png" in str(artifacts["wavegen-outputs"].data)
