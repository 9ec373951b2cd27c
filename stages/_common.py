"""What every stage module shares: argument parsing, params validation, exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from wavegen_core.config import PARAMS_FILE, VOCODER_FAMILIES, Params, ParamsError, load_params
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
    return _run(name, args.params, body)


def run_family_stage(
    name: str, body: Callable[[Params, str], None], argv: Sequence[str] | None = None
) -> int:
    """:func:`run_stage` for a stage run once per vocoder family (``stage@family``).

    The family is the first argument; one that ``vocoder.families`` does not list is
    refused like a bad param (exit 2), since DVC only creates stages for listed ones.
    """
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    parser.add_argument("family", choices=VOCODER_FAMILIES, help="vocoder family")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    args = parser.parse_args(argv)

    def body_for_family(params: Params) -> None:
        if args.family not in params.vocoder.families:
            raise ParamsError(
                args.params,
                [
                    f"vocoder.families = {params.vocoder.families!r}: does not list "
                    f"{args.family!r}, so {name}@{args.family} has nothing to do"
                ],
            )
        body(params, args.family)

    return _run(f"{name}@{args.family}", args.params, body_for_family)


def _run(name: str, params_file: str, body: Callable[[Params], None]) -> int:
    setup_logging()
    try:
        params = load_params(params_file)
    except ParamsError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    try:
        body(params)
    except ParamsError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    except WavegenError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    log.info("%s: done", name)
    return 0


def run_tier_stage(
    name: str, body: Callable[[Params, int], None], argv: Sequence[str] | None = None
) -> int:
    """:func:`run_stage` for a stage run once per VQ-VAE tier (``stage@<k>``).

    The tier number is the first argument; one that ``vqvae.tiers`` does not define is
    refused like a bad param (exit 2), since DVC only creates stages for defined tiers.
    """
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    parser.add_argument("tier", type=int, help="tier number (1 = on the waveform)")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    args = parser.parse_args(argv)

    def body_for_tier(params: Params) -> None:
        if str(args.tier) not in params.vqvae.tiers:
            raise ParamsError(
                args.params,
                [
                    f"vqvae.tiers defines tiers {', '.join(params.vqvae.tiers)}: "
                    f"not {args.tier}, so {name}@{args.tier} has nothing to do"
                ],
            )
        body(params, args.tier)

    return _run(f"{name}@{args.tier}", args.params, body_for_tier)
