"""A screenshot of the Prefect UI showing one finished run of the pipeline.

The picture in the docs should show what a user actually sees, so this runs the real
thing end to end: the flow runs the tiny profile of the pipeline in a throwaway copy of
the repo, against a throwaway Prefect server, and headless Chromium photographs the
UI page of that flow run. Nothing outside temporary directories is touched except the
output PNG. Needs the Debian package ``chromium``; takes about half a minute.

Run it with ``make screenshot`` (which installs chromium when missing), or::

    python -m tools.screenshot_ui --out docs/prefect-ui-run.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.server import local_server
from tools.browser import CHROMIUM
from tools.workspace import tiny_repo_copy

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "prefect-ui-run.png"
WINDOW = "1600,1000"
# Virtual time lets the single page app fetch and draw before the picture is taken.
VIRTUAL_TIME_BUDGET_MS = 15000
RUN_ID_MARKER = "FLOW_RUN_ID="
# Runs the flow and prints the id of its flow run, so no server query is needed.
FLOW_SCRIPT = f"""
import sys
from pipelines.flow import pipeline
state = pipeline(repo=sys.argv[1], return_state=True)
print("{RUN_ID_MARKER}" + str(state.state_details.flow_run_id), flush=True)
sys.exit(0 if state.is_completed() else 1)
"""
# Headless, no sandbox (root in containers), and none of Chromium's own background
# connections, which sandboxed machines refuse; the page itself only talks to 127.0.0.1.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Under virtual time the run graph's axis is otherwise caught mid-layout in about
    # one picture in three (all time labels piled up at the left edge).
    "--run-all-compositor-stages-before-draw",
]


def run_flow(repo: Path, env: dict[str, str]) -> str:
    """Run the pipeline on the server; the id of its flow run."""
    result = subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT, str(repo)],
        cwd=REPO_ROOT,  # so that `pipelines` imports from this checkout
        env=env,
        capture_output=True,
        text=True,
    )
    ids = [
        line.removeprefix(RUN_ID_MARKER)
        for line in result.stdout.splitlines()
        if line.startswith(RUN_ID_MARKER)
    ]
    if result.returncode != 0 or not ids:
        sys.exit(f"the flow failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return ids[-1].strip()


def screenshot(url: str, out: Path, profile: Path) -> None:
    """Photograph ``url`` once the single page app has rendered it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    if not out.is_file():
        sys.exit(f"chromium wrote no screenshot to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshot the Prefect UI of one run.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    out = parser.parse_args().out.resolve()
    if not Path(CHROMIUM).is_file():
        sys.exit(f"{CHROMIUM} not found: install the Debian package `chromium`")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wavegen-ui-") as tmp_dir:
        tmp = Path(tmp_dir)
        with local_server(tmp / "prefect-home") as env:
            # Without a lock file every stage runs, so the run page shows real work.
            repo = tiny_repo_copy(REPO_ROOT, tmp / "repo", env)
            run_id = run_flow(repo, env)
            page = env["PREFECT_API_URL"].removesuffix("/api") + f"/runs/flow-run/{run_id}"
            screenshot(page, out, tmp / "chromium-profile")
    print(f"{out} (flow run {run_id}, {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
