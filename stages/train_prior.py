"""Stage `train_prior`: the autoregressive prior over the top tier's codes.

`python -m stages.train_prior --codes DIR --checkpoint FILE --reports DIR` trains a
transformer built from the Music Transformer's decoder layers on the codes `encode@<top>`
wrote for the train split (the unlabelled pool included; `--codes` holds every tier's
codes, tier k's under `<k>/`, and the top tier is the last of `vqvae.tiers`) and writes
its checkpoint (kept across runs so a killed run resumes), its curves under
`--reports`, and the test split's negative log-likelihood per code (nats and bits) and
per second of audio in `test.json` there.
"""

from __future__ import annotations

import argparse
import math
import sys

from stages._common import run_stage
from stages._training import training_device
from wavegen_core.data.codes import code_arrays, level_digest, read_codes, training_split
from wavegen_core.files import write_json
from wavegen_core.models.hierarchy.prior import SPEC
from wavegen_core.params import Params
from wavegen_core.progress import log
from wavegen_core.training.prior import evaluate_nll, train_prior

PATHS = {
    "codes": "every tier's codes (tier k's under <k>/)",
    "checkpoint": "the prior's checkpoint",
    "reports": "metrics, curves and the test NLL",
}


def train(params: Params, args: argparse.Namespace) -> None:
    config = params.vqvae
    # First: with train.nproc > 1 the stage starts again as that many processes here.
    device = training_device(params, config.prior.train, "vqvae.prior.train", args)
    top = config.top
    source = args.codes / str(top)
    level = read_codes(source)
    train_pieces = training_split(level)
    validation = level.split("validation")
    test = level.split("test")
    codebook_size = int(level.info["codebook_size"])
    log.info(
        "train_prior: tier %d codes (%d of them), %d train, %d validation, %d test pieces",
        top,
        codebook_size,
        len(train_pieces),
        len(validation),
        len(test),
    )
    train_prior(
        config.prior,
        codebook_size,
        code_arrays(train_pieces),  # memory-mapped: windows are read per step
        [piece.whole() for piece in validation],
        seed=params.seed,
        device=device,
        checkpoint_path=args.checkpoint,
        metrics_dir=args.reports,
        input_digest=level_digest(source),
    )
    model = SPEC.load(args.checkpoint, device)
    report: dict[str, float | int] = {
        "tier": top,
        "uniform_bits_per_code": math.log2(codebook_size),
        "test_codes": sum(piece.length for piece in test),
    }
    if test:
        nll = evaluate_nll(
            model,
            [piece.whole() for piece in test],
            context=config.prior.model.context,
            device=device,
        )
        codes_per_second = float(level.info["codes_per_second"])
        report.update(
            nll_per_code=nll,
            bits_per_code=nll / math.log(2),
            bits_per_second=nll / math.log(2) * codes_per_second,
        )
        log.info("train_prior: test NLL %.3f nats per code (%.2f bits)", nll, nll / math.log(2))
    else:
        # A test NLL of the training codes would flatter: none is written.
        log.warning("train_prior: the corpus has no test split; no test NLL is written")
    write_json(args.reports / "test.json", report)


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_prior", PATHS, train, argv)


if __name__ == "__main__":
    sys.exit(main())
