"""What every stage module shares: arguments, params validation, exit codes.

A stage's paths come from its command line, written once in ``dvc.yaml`` (as DVC's own
examples do: ``cmd: python -m stages.train data/prepared models/...``), so that the
graph is the only place a path is named. :func:`stage_parser` makes a parser with the
stage's path options (all required) and ``--params``; :func:`run_stage`,
:func:`run_family_stage` and :func:`run_tier_stage` validate the params first (exit 2),
then run the stage's body with them and the parsed arguments (among them
``stage_command``, what starts the same stage again: see ``stages/_training.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wavegen_core import threads
from wavegen_core.errors import EXIT_BAD_PARAMS, EXIT_FAILED, WavegenError
from wavegen_core.params import PARAMS_FILE, VOCODER_FAMILIES, Params, ParamsError, load_params
from wavegen_core.progress import log, setup_logging

Body = Callable[[Params, argparse.Namespace], None]


def stage_parser(
    name: str, paths: Mapping[str, str], many: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """A parser for ``python -m stages.<name>``: one required ``--<option> PATH`` per entry
    of ``paths`` (option -> what the path is), ``--<option> PATH [PATH ...]`` per entry
    of ``many``, and ``--params``."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    for option, help_text in paths.items():
        parser.add_argument(
            f"--{option.replace('_', '-')}",
            dest=option,
            type=Path,
            required=True,
            metavar="PATH",
            help=help_text,
        )
    for option, help_text in (many or {}).items():
        parser.add_argument(
            f"--{option}", type=Path, nargs="+", required=True, metavar="PATH", help=help_text
        )
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    return parser


def run_stage(
    name: str,
    paths: Mapping[str, str],
    body: Body,
    argv: Sequence[str] | None = None,
    many: Mapping[str, str] | None = None,
) -> int:
    """Parse the arguments, validate params (exit 2 when invalid, before any compute), then
    run ``body(params, args)``.

    A :class:`WavegenError` is reported as one message and exit code 1; anything else
    is a bug and keeps its traceback.
    """
    args = _parsed(stage_parser(name, paths, many), name, argv)
    return _run(name, args, body)


def run_family_stage(
    name: str,
    paths: Mapping[str, str],
    body: Body,
    argv: Sequence[str] | None = None,
    listed_in: str = "families",
) -> int:
    """:func:`run_stage` for a stage run once per vocoder family (``stage@family``).

    The family is the first argument (``args.family``); one that the list
    ``vocoder.<listed_in>`` (``families``, or ``mel.families`` for the mel-conditioned
    stages) does not hold is refused like a bad param (exit 2), since DVC only creates
    stages for listed ones.
    """
    parser = stage_parser(name, paths)
    parser.add_argument("family", choices=VOCODER_FAMILIES, help="vocoder family")
    args = _parsed(parser, name, argv)

    def body_for_family(params: Params, args: argparse.Namespace) -> None:
        listed: Any = params.vocoder
        for key in listed_in.split("."):
            listed = getattr(listed, key)
        if args.family not in listed:
            raise ParamsError(
                args.params,
                [
                    f"vocoder.{listed_in} = {list(listed)!r}: does not list "
                    f"{args.family!r}, so {name}@{args.family} has nothing to do"
                ],
            )
        body(params, args)

    return _run(f"{name}@{args.family}", args, body_for_family)


def run_tier_stage(
    name: str, paths: Mapping[str, str], body: Body, argv: Sequence[str] | None = None
) -> int:
    """:func:`run_stage` for a stage run once per VQ-VAE tier (``stage@<k>``).

    The tier number is the first argument (``args.tier``); one that ``vqvae.tiers``
    does not define is refused like a bad param (exit 2), since DVC only creates stages
    for defined tiers.
    """
    parser = stage_parser(name, paths)
    parser.add_argument("tier", type=int, help="tier number (1 = on the waveform)")
    args = _parsed(parser, name, argv)

    def body_for_tier(params: Params, args: argparse.Namespace) -> None:
        if str(args.tier) not in params.vqvae.tiers:
            raise ParamsError(
                args.params,
                [
                    f"vqvae.tiers defines tiers {', '.join(params.vqvae.tiers)}: "
                    f"not {args.tier}, so {name}@{args.tier} has nothing to do"
                ],
            )
        body(params, args)

    return _run(f"{name}@{args.tier}", args, body_for_tier)


def _parsed(
    parser: argparse.ArgumentParser, name: str, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The arguments, with what it takes to start the same stage again (under torchrun)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.stage_command = (f"stages.{name}", argv)
    return args


def _run(name: str, args: argparse.Namespace, body: Body) -> int:
    setup_logging()
    try:
        params = load_params(args.params)
    except ParamsError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    try:
        given = threads.requested()
        count = threads.apply()
        share = f" ({threads.THREADS_VARIABLE}, the runner's share)" if given else ""
        log.info("%s: %d threads%s", name, count, share)
        body(params, args)
    except ParamsError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    except WavegenError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    log.info("%s: done", name)
    return 0
