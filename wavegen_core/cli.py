"""The ``wavegen`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wavegen_core.config import PARAMS_FILE, ParamsError, load_params

EXIT_BAD_PARAMS = 2


def _check_params(args: argparse.Namespace) -> int:
    try:
        load_params(args.file)
    except ParamsError as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_PARAMS
    print(f"{args.file}: valid")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from wavegen_core import profiles

    try:
        profiles.apply_profile(args.name, args.params)
    except ParamsError as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_PARAMS
    except (ValueError, KeyError) as err:
        print(f"wavegen profile: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    print(f"{args.params}: profile {args.name} applied; `dvc repro` reruns what it changes")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavegen", description="Hierarchical music generation in the waveform domain."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-params", help="validate a params file and exit")
    check.add_argument("file", nargs="?", default=PARAMS_FILE)
    check.set_defaults(run=_check_params)

    profile = commands.add_parser(
        "profile", help="switch params.yaml to a named profile (tiny: CPU in minutes; full)"
    )
    profile.add_argument("name", help="tiny or full")
    profile.add_argument("--params", default=PARAMS_FILE)
    profile.set_defaults(run=_profile)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
