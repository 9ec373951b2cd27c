"""Vocoder training pairs: audio padded to whole frames, rolls aligned, seeded excerpts."""

from __future__ import annotations

import numpy as np
import pretty_midi
import torch

from wavegen_core.data.pairs import ROLL_CHANNELS, pair_piece, segment_batch
from wavegen_core.midi.rolls import KEY_COUNT, LOWEST_KEY


def _piece(piece_id: str, seconds: float, rate: int, hop: int, onsets: list[float]):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(100, 60, t, t + 0.05) for t in onsets]
    midi.instruments.append(piano)
    audio = np.zeros(int(seconds * rate), dtype=np.float32)
    for t in onsets:  # a click at every onset, so alignment can be checked
        audio[int(round(t * rate))] = 1.0
    return pair_piece(piece_id, audio, midi, rate, hop)


def test_pair_pads_audio_to_whole_frames() -> None:
    piece = _piece("a", 1.01, 1000, 16, [0.2])
    assert piece.frames == -(-1010 // 16)
    assert len(piece.audio) == piece.frames * 16
    assert piece.roll.shape == (ROLL_CHANNELS, piece.frames) and piece.roll.dtype == np.float16


def test_segments_line_up_audio_and_roll_and_repeat_by_step() -> None:
    rate, hop = 1000, 10
    pieces = [_piece("a", 3.0, rate, hop, [0.25, 1.5, 2.7]), _piece("b", 0.5, rate, hop, [0.1])]
    batch = segment_batch(pieces, seed=3, step=7, batch_size=16, segment_frames=40, hop_length=hop)
    assert batch["audio"].shape == (16, 400) and batch["roll"].shape == (16, ROLL_CHANNELS, 40)
    onsets = batch["roll"][:, 60 - LOWEST_KEY]  # the onset channel of middle C
    for audio, onset in zip(batch["audio"], onsets, strict=True):
        # every click lies in a frame whose onset flag is set, and vice versa
        click_frames = sorted({int(i) // hop for i in torch.nonzero(audio).flatten()})
        assert click_frames == torch.nonzero(onset).flatten().tolist()
    assert (batch["roll"][:, KEY_COUNT + 60 - LOWEST_KEY] >= onsets).all()
    again = segment_batch(pieces, seed=3, step=7, batch_size=16, segment_frames=40, hop_length=hop)
    assert torch.equal(again["audio"], batch["audio"]) and torch.equal(again["roll"], batch["roll"])
    other = segment_batch(pieces, seed=3, step=8, batch_size=16, segment_frames=40, hop_length=hop)
    assert not torch.equal(other["audio"], batch["audio"])


def test_streamed_pairs_give_the_excerpts_of_pairs_in_memory(tmp_path) -> None:
    from tests.conftest import write_corpus_piece
    from wavegen_core.data.pairs import load_pairs

    rate, hop = 16000, 256
    records = []
    rng = np.random.default_rng(5)
    for index, seconds in enumerate((4.0, 0.7)):
        name = f"p{index}"
        midi = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        for _ in range(30):  # overlapping notes of few keys: velocities taken over
            start = float(rng.uniform(0, seconds))
            note = pretty_midi.Note(
                int(rng.integers(1, 128)), int(rng.integers(58, 62)), start, start + 0.4
            )
            piano.notes.append(note)
        piano.control_changes += [
            pretty_midi.ControlChange(64, 100, 0.5),
            pretty_midi.ControlChange(64, 0, 1.5),
        ]
        midi.instruments.append(piano)
        audio = rng.uniform(-0.5, 0.5, int(seconds * rate))
        records.append(write_corpus_piece(tmp_path, name, audio, midi, rate))
    in_memory = load_pairs(records, tmp_path, rate, hop)
    streamed = load_pairs(records, tmp_path, rate, hop, stream=True)
    for ours, theirs in zip(streamed, in_memory, strict=True):
        assert (ours.frames, ours.samples) == (theirs.frames, theirs.samples)
        assert np.array_equal(
            ours.roll_window(0, ours.frames), theirs.roll_window(0, theirs.frames)
        )
        assert ours.roll_window(-5, 3).sum() == 0 and ours.roll_window(ours.frames, 4).sum() == 0
    for step in range(4):
        draw = dict(seed=1, step=step, batch_size=6, segment_frames=40, hop_length=hop)
        ours = segment_batch(streamed, **draw, history_frames=30)
        theirs = segment_batch(in_memory, **draw, history_frames=30)
        assert torch.equal(ours["audio"], theirs["audio"])
        assert torch.equal(ours["roll"], theirs["roll"])
