"""What every stage module shares: argument parsing, params validation, exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from wavegen_core.config import PARAMS_FILE, Params, ParamsError, load_params
from wavegen_core.errors import EXIT_BAD_PARAMS, EXIT_FAILED, WavegenError
from wavegen_core.progress import log, setup_logging


def run_stage(name: str, body: Callable[[Params], None], argv: Sequence[str] | None = None) -> int:
    """Validate params (exit 2 when invalid, before any compute), then run ``body``.

    A :class:`WavegenError` is reported as one message and exit code 1; anything else
    is a bug and keeps its traceback.
    """
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        params = load_params(args.params)
    except ParamsError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    try:
        body(params)
    except WavegenError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    log.info("%s: done", name)
    return 0
