"""Stage `compose`: new pieces from the Music Transformer, the input of the vocoders.

`python -m stages.compose --prepared DIR --checkpoint FILE --out DIR --reports DIR`
writes under `--out`: `midi/<name>.mid` for `compose.unconditional` pieces sampled
from nothing and `compose.continuations` continuations of primers cut from the start of
test-split pieces, a piano roll `rolls/<name>.png` of each, and `manifest.json`.
`metrics.json` under `--reports` holds the model's test NLL per event and how the
composed pieces compare with the test set (pitch-class and inter-onset-interval
histogram distances, note density, polyphony and range side by side); for
continuations only the part after the primer counts. Inference runs on the top-level
`device`.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import pretty_midi

from stages._common import run_stage
from wavegen_core import __version__
from wavegen_core.data.manifest import midi_files
from wavegen_core.evaluation.plots import plot_piano_roll
from wavegen_core.evaluation.symbolic import compare_sets
from wavegen_core.files import replace_dir, staging_dir, write_json
from wavegen_core.midi.events import decode_events
from wavegen_core.midi.io import write_midi
from wavegen_core.midi.rolls import notes_to_midi
from wavegen_core.models.symbolic.music_transformer import (
    SPEC,
    SamplingConfig,
    primer_events,
    sample_events,
)
from wavegen_core.params import Params
from wavegen_core.progress import log, progress
from wavegen_core.seeding import step_generator
from wavegen_core.training.device import choose_device
from wavegen_core.training.music_transformer import (
    NotePiece,
    evaluation_windows,
    load_pieces,
    score_windows,
)

PATHS = {
    "prepared": "the prepared corpus (its test split: the primers and the test NLL)",
    "checkpoint": "the Music Transformer's checkpoint",
    "out": "the composed pieces",
    "reports": "metrics",
}
# A model that never moves time forward would sample forever: a piece stops after this
# many events per second asked for (piano performances have about 20 to 60).
MAX_EVENTS_PER_SECOND = 200


def compose(params: Params, args: argparse.Namespace) -> None:
    config = params.music_transformer.compose
    device = choose_device(params.device)
    model = SPEC.load(args.checkpoint, device)
    assert model.vocab is not None
    vocab = model.vocab
    test, rejected = load_pieces(midi_files(args.prepared, ("test",)), vocab.config)
    for entry in rejected:
        log.warning("skipped test piece %s: %s", entry["piece"], entry["reason"])
    metrics: dict[str, Any] = {}
    if test:
        windows = evaluation_windows(test, vocab, model.config.context)
        scores = score_windows(model, windows, device, vocab=vocab)
        metrics["test"] = {
            "nll_per_event": scores["nll"],
            "accuracy": scores["accuracy"],
            "events": int(scores["events"]),
            "pieces": len(test),
            # Where the uncertainty lies: timing, pitches, dynamics.
            "nll_by_event_kind": {
                name.removeprefix("nll_"): value
                for name, value in scores.items()
                if name.startswith("nll_")
            },
        }
        log.info(
            "compose: test NLL %.4f nats per event over %d events",
            scores["nll"],
            int(scores["events"]),
        )
    else:
        log.warning("compose: no test split with MIDI; no test NLL and no primers")
    continuations = config.continuations if test else 0
    sampling = SamplingConfig(config.temperature, config.top_k, config.top_p)
    max_events = math.ceil(config.seconds * MAX_EVENTS_PER_SECOND)
    staging = staging_dir(args.out, f"{params.seed}-{__version__}")
    jobs: list[tuple[str, int, NotePiece | None]] = [
        ("unconditional", index, None) for index in range(config.unconditional)
    ]
    jobs += [("continuation", index, test[index % len(test)]) for index in range(continuations)]
    records: list[dict[str, Any]] = []
    unconditional: list[list[pretty_midi.Note]] = []
    continued: list[list[pretty_midi.Note]] = []
    for number, (kind, index, primer_piece) in enumerate(
        progress(jobs, total=len(jobs), desc="compose", unit="piece")
    ):
        primer: list[int] = (
            []
            if primer_piece is None
            else primer_events(primer_piece.notes, vocab, config.primer_seconds)
        )
        events = sample_events(
            model,
            vocab,
            primer=primer,
            max_events=max_events,
            max_seconds=config.seconds,
            sampling=sampling,
            generator=step_generator(params.seed, number),
        )
        name = f"{kind}_{index:03d}"
        notes = decode_events(events, vocab)
        midi = notes_to_midi(notes)
        write_midi(staging / "midi" / f"{name}.mid", midi)
        primer_seconds = None if primer_piece is None else config.primer_seconds
        title = name if primer_piece is None else f"{name}: continues {primer_piece.name}"
        plot_piano_roll(
            notes, staging / "rolls" / f"{name}.png", title=title, primer_seconds=primer_seconds
        )
        if primer_piece is None:
            unconditional.append(notes)
        else:
            continued.append([n for n in notes if n.start >= config.primer_seconds])
        records.append(
            {
                "id": name,
                "midi": f"midi/{name}.mid",
                "kind": kind,
                "primer": None if primer_piece is None else primer_piece.name,
                "primer_seconds": primer_seconds,
                "events": len(events),
                "primer_events": len(primer),
                "notes": len(notes),
                "seconds": round(midi.get_end_time(), 3),
                "stopped_at_event_limit": len(events) - len(primer) >= max_events,
            }
        )
    write_json(staging / "manifest.json", {"pieces": records})
    metrics["composed"] = {"pieces": len(records), "notes": sum(r["notes"] for r in records)}
    reference = [piece.notes for piece in test]
    for label, pieces in (("unconditional", unconditional), ("continuations", continued)):
        if reference and any(pieces):
            metrics[label] = compare_sets([p for p in pieces if p], reference)
    replace_dir(staging, args.out)
    write_json(args.reports / "metrics.json", metrics)
    log.info("compose: %d pieces -> %s", len(records), args.out)


def main(argv: list[str] | None = None) -> int:
    return run_stage("compose", PATHS, compose, argv)


if __name__ == "__main__":
    sys.exit(main())
