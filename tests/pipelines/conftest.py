"""A real Prefect API for the flow's tests: Prefect's test harness (a local server)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


def wait_until(condition, timeout: float, what: str, interval: float = 0.5) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout} s")


@pytest.fixture()
def prefect_server(tmp_path, venv_env):
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME."""
    from pipelines.server import local_server

    with local_server(tmp_path / "prefect-home") as env:
        yield {**venv_env, **env}
