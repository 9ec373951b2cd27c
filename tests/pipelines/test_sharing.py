"""Artefact sharing: a flow run pushes to the DVC remote; a second clone pulls instead of running.

Against a real S3 API on loopback (moto's server) through dvc-s3. The flow shares
through whatever remote DVC is given; the default kind (a directory beside the
checkout) gets its push and pull in tests/integration.
"""

from __future__ import annotations

import subprocess

import pytest

from pipelines.flow import pipeline
from pipelines.server import free_port
from tests.conftest import run
from tests.pipelines.conftest import wait_until
from tests.pipelines.toy_repo import make_toy_repo

pytestmark = pytest.mark.slow

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


def _share_and_pull(tmp_path, env, configure_remote) -> None:
    first = make_toy_repo(tmp_path / "first", seconds=0.2)
    configure_remote(first)
    run(["git", "add", "-A"], first, env)
    run(["git", *GIT_ID, "commit", "-qm", "remote"], first, env)
    ran = pipeline(repo=str(first), share=True)
    assert {o.status for o in ran} == {"ran"}
    run(["git", "add", "-A"], first, env)
    run(["git", *GIT_ID, "commit", "-qm", "run"], first, env)

    second = tmp_path / "second"
    run(["git", "clone", "-q", str(first), str(second)], tmp_path, env)
    pulled = pipeline(repo=str(second), share=True)
    assert "ran" not in {o.status for o in pulled}
    for name in "abc":
        assert (second / f"out/{name}.json").read_text() == (first / f"out/{name}.json").read_text()
    again = run(["dvc", "repro"], second, env)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


@pytest.fixture()
def s3_endpoint(tmp_path, venv_env, monkeypatch):
    """moto's S3 server on a loopback port, with one bucket and fake credentials."""
    import boto3

    port = free_port()
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in credentials.items():
        monkeypatch.setenv(key, value)
    with open(tmp_path / "moto.log", "w") as log:
        server = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
            env={**venv_env, **credentials},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

        def up() -> bool:
            try:
                client.list_buckets()
                return True
            except Exception:
                return False

        try:
            wait_until(up, 60, "moto S3 server")
            client.create_bucket(Bucket="wavegen-lab")
            yield endpoint, client, {**venv_env, **credentials}
        finally:
            server.terminate()
            server.wait(timeout=20)


def test_s3_remote(tmp_path, prefect_api, s3_endpoint) -> None:
    endpoint, client, env = s3_endpoint

    def configure(repo):
        run(["dvc", "remote", "add", "-d", "lab", "s3://wavegen-lab/dvc"], repo, env)
        run(["dvc", "remote", "modify", "lab", "endpointurl", endpoint], repo, env)

    _share_and_pull(tmp_path, env, configure)
    stored = client.list_objects_v2(Bucket="wavegen-lab", Prefix="dvc/")
    assert stored.get("KeyCount", 0) > 0
