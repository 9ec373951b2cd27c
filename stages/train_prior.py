"""Stage `train_prior`: the autoregressive prior over the top tier's codes.

`python -m stages.train_prior` trains a transformer built from the Music Transformer's
decoder layers on the codes `encode@<top>` wrote for the train split (the unlabelled
pool included) and writes `models/prior/checkpoint.pt` (kept across runs so a killed run
resumes), its curves under `reports/train_prior/`, and the test split's negative
log-likelihood per code (nats and bits) and per second of audio in
`reports/train_prior/test.json`.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from stages._common import run_stage
from wavegen_core.config import Params, codes_dir
from wavegen_core.data.codes import held_out_split, level_digest, read_codes, training_split
from wavegen_core.files import write_json
from wavegen_core.progress import log
from wavegen_core.training import choose_device
from wavegen_core.training.prior import evaluate_nll, load_prior, train_prior

CHECKPOINT = Path("models/prior/checkpoint.pt")
REPORTS = Path("reports/train_prior")


def train(params: Params) -> None:
    config = params.vqvae
    top = config.top
    source = codes_dir(top)
    level = read_codes(source)
    train_pieces, validation = training_split(level), held_out_split(level, "validation")
    test = held_out_split(level, "test")
    codebook_size = int(level.info["codebook_size"])
    log.info(
        "train_prior: tier %d codes (%d of them), %d train, %d validation, %d test pieces",
        top,
        codebook_size,
        len(train_pieces),
        len(validation),
        len(test),
    )
    device = choose_device(
        config.prior.train.device or params.device, param="vqvae.prior.train.device"
    )
    train_prior(
        config.prior,
        codebook_size,
        [piece.values for piece in train_pieces],
        [piece.values for piece in validation],
        seed=params.seed,
        device=device,
        checkpoint_path=CHECKPOINT,
        metrics_dir=REPORTS,
        input_digest=level_digest(source),
    )
    model = load_prior(CHECKPOINT, device)
    nll = evaluate_nll(
        model,
        [piece.values for piece in test],
        context=config.prior.model.context,
        device=device,
    )
    codes_per_second = float(level.info["codes_per_second"])
    write_json(
        REPORTS / "test.json",
        {
            "tier": top,
            "nll_per_code": nll,
            "bits_per_code": nll / math.log(2),
            "bits_per_second": nll / math.log(2) * codes_per_second,
            "uniform_bits_per_code": math.log2(codebook_size),
            "test_codes": sum(piece.length for piece in test),
        },
    )
    log.info("train_prior: test NLL %.3f nats per code (%.2f bits)", nll, nll / math.log(2))


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_prior", train, argv)


if __name__ == "__main__":
    sys.exit(main())
