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


def _run(args: argparse.Namespace) -> int:
    # The library knows nothing of Prefect; the flow lives in pipelines/.
    from pipelines.flow import pipeline

    outcomes = pipeline(
        targets=args.targets or None,
        overrides=args.set_param or None,
        experiment=args.experiment,
        repo=args.repo,
        share=args.share,
    )
    for outcome in outcomes:
        print(f"{outcome.stage:<32} {outcome.status:<9} {outcome.seconds:8.1f} s")
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

    flow = commands.add_parser(
        "run", help="run the dvc.yaml DAG as a Prefect flow (independent stages at once)"
    )
    flow.add_argument("targets", nargs="*", help="stages to run with their upstream (default all)")
    flow.add_argument(
        "-S",
        "--set-param",
        action="append",
        metavar="KEY=VALUE",
        help="a params override as in `dvc exp run -S`; the run becomes an experiment",
    )
    flow.add_argument("--experiment", help="name of the DVC experiment to record")
    flow.add_argument(
        "--share",
        action="store_true",
        help="pull inputs from / push outputs to the DVC remote around each stage",
    )
    flow.add_argument("--repo", default=".", help="the DVC project (default: here)")
    flow.set_defaults(run=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
