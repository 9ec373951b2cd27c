"""Training excerpts: audio and targets on one frame grid, drawn deterministically per step."""

from __future__ import annotations

import numpy as np
import torch

from tests.conftest import scale_midi
from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig
from wavegen_core.data.segments import AlignedPiece, excerpt, excerpt_batch
from wavegen_core.midi.rolls import midi_to_targets

MEL = MelConfig(n_mels=16, n_fft=512, hop_length=160)


def _piece(seconds: float = 3.0) -> AlignedPiece:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * MEL.sample_rate))
    n_frames = len(audio) // MEL.hop_length + 1
    targets = midi_to_targets(scale_midi([60, 62, 64, 65, 67, 69]), n_frames, MEL.frames_per_second)
    return AlignedPiece("p", audio.astype(np.float32), targets)


def test_excerpt_audio_makes_exactly_its_frames_and_targets_line_up() -> None:
    piece = _piece()
    audio, targets = excerpt(piece, first_frame=25, n_frames=40, hop_length=MEL.hop_length)
    assert LogMelSpectrogram(MEL).frame_count(len(audio)) == 40
    assert np.array_equal(audio, piece.audio[25 * 160 : 25 * 160 + 39 * 160])
    assert np.array_equal(targets["frames"], piece.targets["frames"][25:65])
    # 0.25 s notes at 100 frames/s: the note at 0.5 s starts at frame 50 = row 25.
    assert targets["onsets"][25].sum() == 1 and targets["onsets"][25, 64 - 21] == 1


def test_excerpt_past_the_end_is_zero_padded() -> None:
    piece = _piece(seconds=1.0)
    audio, targets = excerpt(piece, first_frame=90, n_frames=30, hop_length=MEL.hop_length)
    assert len(audio) == 29 * 160 and not audio[20 * 160 :].any()
    assert targets["frames"].shape == (30, 88) and not targets["frames"][11:].any()


def test_batches_depend_only_on_seed_and_step() -> None:
    pieces = [_piece(), _piece(2.0)]
    draw = lambda step, seed=1: excerpt_batch(  # noqa: E731
        pieces, seed=seed, step=step, batch_size=4, n_frames=50, hop_length=MEL.hop_length
    )
    first = draw(3)
    assert first["audio"].shape == (4, 49 * 160) and first["frames"].shape == (4, 50, 88)
    assert all(torch.equal(first[k], draw(3)[k]) for k in first)
    assert not torch.equal(first["audio"], draw(4)["audio"])
    assert not torch.equal(first["audio"], draw(3, seed=2)["audio"])


def test_streamed_pieces_give_the_excerpts_of_pieces_in_memory(tmp_path) -> None:
    from tests.conftest import write_corpus_piece
    from wavegen_core.data.segments import load_aligned

    records = []
    for index, seconds in enumerate((3.0, 1.3)):
        name = f"p{index}"
        audio = np.random.default_rng(index).uniform(-0.5, 0.5, int(seconds * MEL.sample_rate))
        midi = scale_midi([60 + index, 64, 67, 72])
        records.append(write_corpus_piece(tmp_path, name, audio, midi, MEL.sample_rate))
    in_memory = load_aligned(records, tmp_path, MEL)
    streamed = load_aligned(records, tmp_path, MEL, stream=True)
    assert [p.n_frames for p in streamed] == [p.n_frames for p in in_memory]
    assert not isinstance(streamed[0].audio, np.ndarray)  # left on disk
    for step in range(5):  # excerpts that run past the end of the short piece too
        draw = dict(seed=2, step=step, batch_size=6, n_frames=90, hop_length=MEL.hop_length)
        ours, theirs = excerpt_batch(streamed, **draw), excerpt_batch(in_memory, **draw)
        assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
