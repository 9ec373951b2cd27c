"""A Prefect server on this machine's loopback, for tests, benchmarks and a laptop UI.

Production uses one long-lived `prefect server start` (see the README); this context
manager starts the same program on a free port with its own PREFECT_HOME and stops
it again, so that nothing outside the block is touched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def local_server(home: str | os.PathLike[str], timeout: float = 90.0) -> Iterator[dict[str, str]]:
    """Run `prefect server start` on 127.0.0.1; yield the environment that talks to it.

    The yielded mapping holds ``PREFECT_API_URL``, ``PREFECT_HOME`` and the settings
    that keep Prefect quiet; pass it to subprocesses (workers, flows, CLI calls).
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **QUIET,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        # Workers poll every second instead of ten, so runs start promptly.
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    with open(home / "server.log", "w") as log:
        server = subprocess.Popen(
            ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(api):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"prefect server did not start on port {port}; see {home / 'server.log'}"
                    )
                time.sleep(0.5)
            yield env
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
