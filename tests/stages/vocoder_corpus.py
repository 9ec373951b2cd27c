"""The vocoder stage tests' workspace: the first seconds of a few Bach chorales, rendered
with FluidSynth as the data stage does (four train pieces, one validation, one test), one
composed piece, an untrained transcriber checkpoint (transcription consistency only needs
one to run), and params that train every family at its learning size."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import yaml

from tests.conftest import untrained_checkpoint, write_chorale_corpus
from tests.families import (
    LEARNING_CONDITIONING,
    LEARNING_RATE,
    LEARNING_SECTIONS,
    LEARNING_STEPS,
)
from wavegen_core.files import write_json
from wavegen_core.midi.io import write_midi
from wavegen_core.models.vocoders.registry import vocoder_families

HOP = LEARNING_CONDITIONING["hop_length"]
# DDSP's validation loss, the figure its learning is judged by, every 25 steps.
EVAL_EVERY = {"ddsp": 25}

RATE = 16000
SPLITS = ["train"] * 4 + ["validation", "test"]
EXCERPT_SECONDS = 6.0


def write_vocoder_corpus(root: Path) -> Path:
    """The stage tests' workspace under ``root``: the corpus, one composed piece and an
    untrained transcriber checkpoint."""
    write_chorale_corpus(root / "data/prepared", SPLITS, EXCERPT_SECONDS, RATE)
    composed = root / "data/composed"
    melody = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(90, 60 + 2 * i, 0.3 * i, 0.3 * i + 0.25) for i in range(8)]
    melody.instruments.append(piano)
    write_midi(composed / "midi/unconditional_000.mid", melody)
    write_json(
        composed / "manifest.json",
        {"pieces": [{"id": "unconditional_000", "midi": "midi/unconditional_000.mid"}]},
    )
    untrained_checkpoint(root / "models/transcriber/checkpoint.pt")
    return root


def write_vocoder_params(root: Path, **synthesize_values: object) -> None:
    """params.yaml for every family at its learning size (tests/families.py)."""
    from wavegen_core.params import Params

    params = Params().model_dump(mode="json")
    params["device"] = "cpu"
    vocoder = params["vocoder"]
    vocoder["conditioning"].update(LEARNING_CONDITIONING)
    loop = {"batch_size": 4, "checkpoint_every": 30, "log_every": 5, "eval_every": 30}
    for family in vocoder_families():
        vocoder[family].update(LEARNING_SECTIONS[family])
        vocoder[family]["train"].update(
            loop, steps=LEARNING_STEPS[family], learning_rate=LEARNING_RATE[family]
        )
        if family in EVAL_EVERY:
            vocoder[family]["train"]["eval_every"] = EVAL_EVERY[family]
    vocoder["synthesize"].update(
        {"test_pieces": 1, "composed_pieces": 1, "max_seconds": 0.5, **synthesize_values}
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
