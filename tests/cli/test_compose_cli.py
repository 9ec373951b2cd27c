"""`wavegen compose`: a seeded piece of the asked length, continuing a primer; clear errors."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest
import torch

from tests.conftest import scale_midi
from wavegen_core.checkpoint import save_checkpoint
from wavegen_core.cli import main
from wavegen_core.midi.events import EventVocabulary
from wavegen_core.midi.io import write_midi
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.models.symbolic.music_transformer import SPEC
from wavegen_core.params import MusicTransformerConfig


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    """An untrained small model's checkpoint, as train_music_transformer writes them."""
    config = MusicTransformerConfig(
        model=MusicTransformerModelConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, context=64)
    )
    torch.manual_seed(0)
    saved = SPEC.checkpoint_config(
        model=config.model,
        events=config.events,
        augmentation=config.augmentation,
        corpus=config.corpus,
        loop=config.train,
        warmup_steps=config.warmup_steps,
        seed=0,
    )
    model = SPEC.build(saved)
    assert model.vocab is not None and model.vocab.size == EventVocabulary(config.events).size
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(
        path, model, torch.optim.Adam(model.parameters()), step=0, config=saved, metrics={}
    )
    return path


def test_a_seeded_continuation_of_the_primer(tmp_path, checkpoint, capsys) -> None:
    primer = tmp_path / "primer.mid"
    write_midi(primer, scale_midi([60, 62, 64, 65, 67, 69], step=0.5))
    pieces = []
    for name in ("a.mid", "b.mid"):
        out = tmp_path / name
        args = ["compose", "--checkpoint", str(checkpoint), "--primer", str(primer)]
        args += ["--primer-seconds", "1.6", "--seconds", "6", "--seed", "3", "--out", str(out)]
        assert main(args) == 0
        pieces.append(pretty_midi.PrettyMIDI(str(out)))
    assert "events" in capsys.readouterr().out
    notes = sorted(pieces[0].instruments[0].notes, key=lambda n: (n.start, n.pitch))
    # The primer's notes that start in its first 1.6 s come first, on the 10 ms grid.
    assert [(round(n.start, 2), n.pitch) for n in notes[:4]] == [
        (0.0, 60),
        (0.5, 62),
        (1.0, 64),
        (1.5, 65),
    ]
    assert pieces[0].get_end_time() >= 5.5
    assert [(n.start, n.pitch) for n in notes] == [
        (n.start, n.pitch)
        for n in sorted(pieces[1].instruments[0].notes, key=lambda n: (n.start, n.pitch))
    ]


def test_bad_primer_and_bad_sampling_values_get_clear_errors(tmp_path, checkpoint, capsys) -> None:
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not a midi file")
    out = tmp_path / "x.mid"
    base = ["compose", "--checkpoint", str(checkpoint), "--out", str(out), "--events", "8"]
    assert main([*base, "--primer", str(broken)]) == 1
    assert "broken.mid" in capsys.readouterr().err
    assert main([*base, "--top-p", "0"]) == 2
    assert "top_p" in capsys.readouterr().err
    assert main([*base[:2], str(tmp_path / "missing.pt"), *base[3:]]) == 1
    assert "missing.pt" in capsys.readouterr().err
    assert not out.exists()
    assert main(base) == 0 and out.exists()
