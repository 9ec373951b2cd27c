"""Stage `evaluate`, the last node of the graph: one comparison of every model.

Writes ``summary.json`` (every area's headline figures under short, stable keys, a DVC
metric, so that ``dvc exp show`` and ``dvc metrics diff`` compare experiments on them)
and ``index.html`` with its ``media/`` (the listening page: the transcription sets,
the composed pieces, the vocoder families beside the truth and FluidSynth, the tiers
and the prior, every loss curve, and what the run was) under ``--reports``. An area
whose outputs are missing is left out of the page with a note. ``wavegen report``
runs the same command outside DVC and prints the page's path.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_stage
from wavegen_core.evaluation.report.page import write_page
from wavegen_core.evaluation.report.summary import ReportInputs, write_summary
from wavegen_core.params import Params
from wavegen_core.progress import log

PATHS = {
    "prepared": "the prepared corpus (the true audio)",
    "transcription": "evaluate_transcriber's reports",
    "composition": "compose's reports",
    "composed": "the composed pieces",
    "synthesis": "synthesize's reports (one folder per family)",
    "synthesized": "the synthesized audio (one folder per family)",
    "encodings": "encode's reports (one folder per tier)",
    "hierarchy": "sample_hierarchy's reports",
    "samples": "sample_hierarchy's reconstructions and samples",
    "prior": "train_prior's reports",
    "reports": "summary.json, index.html and media/",
}
MANY = {
    "training": "the training stages' reports (their loss curves)",
    "models": "the trained models, files or folders (their hashes)",
}


def evaluate(params: Params, args: argparse.Namespace) -> None:
    inputs = ReportInputs(
        **{key: getattr(args, key) for key in PATHS if key != "reports"},
        training=args.training,
        models=args.models,
    )
    summary = write_summary(inputs, params, args.reports / "summary.json")
    log.info("evaluate: %d areas summarised -> %s", len(summary), args.reports / "summary.json")
    page = write_page(inputs, params, args.reports)
    log.info("evaluate: the listening page -> %s", page)


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", PATHS, evaluate, argv, many=MANY)


if __name__ == "__main__":
    sys.exit(main())
