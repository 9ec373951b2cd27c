"""A real Prefect API for the flow's tests: one `prefect server start` per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def wait_until(condition, timeout: float, what: str, interval: float = 0.5) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout} s")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory, venv_env):
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME: one for
    the whole session (a server takes about 20 s to start on 2 cores). Yields the
    environment for subprocesses (workers, the CLI, flows run as scripts)."""
    from pipelines.server import local_server

    with local_server(tmp_path_factory.mktemp("prefect") / "home") as env:
        yield {**venv_env, **env}


@pytest.fixture(scope="session")
def prefect_api(prefect_server):
    """Flows called in this process report to the session's server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    updates = {
        PREFECT_API_URL: prefect_server["PREFECT_API_URL"],
        PREFECT_HOME: prefect_server["PREFECT_HOME"],
    }
    with temporary_settings(updates=updates):
        yield
