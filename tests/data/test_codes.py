"""The levels of the learnt hierarchy on disk: codes directories, excerpts, digests."""

from __future__ import annotations

import numpy as np
import pytest

from wavegen_core.data.codes import (
    Level,
    LevelPiece,
    code_arrays,
    excerpt_batch,
    level_digest,
    load_level,
    read_codes,
    training_split,
    write_codes,
)
from wavegen_core.errors import WavegenError
from wavegen_core.training.loop import held_out_or_train


def _pieces() -> list[LevelPiece]:
    rng = np.random.default_rng(0)
    return [
        LevelPiece("a", "train", rng.integers(0, 300, 50)),
        LevelPiece("b", "test", rng.integers(0, 300, 7)),
        LevelPiece("c", "unlabelled", rng.integers(0, 300, 20)),
    ]


def _write(directory, pieces: list[LevelPiece], codebook: np.ndarray, info: dict) -> None:
    records = [{"id": p.id, "split": p.split, "length": p.length} for p in pieces]
    write_codes(directory, records, (p.whole() for p in pieces), codebook, info)


def test_codes_round_trip_memory_mapped_with_their_vectors_and_manifest(tmp_path) -> None:
    pieces = _pieces()
    codebook = np.random.default_rng(1).normal(size=(300, 4)).astype(np.float32)
    _write(tmp_path, pieces, codebook, {"tier": 1, "codes_per_second": 2000.0})
    level = read_codes(tmp_path)
    assert [p.id for p in level.pieces] == ["a", "b", "c"]
    for written, read in zip(pieces, level.pieces, strict=True):
        # Stored small and mapped, not read: every read gives int64.
        assert isinstance(read.values, np.memmap) and read.values.dtype == np.int16
        assert read.split == written.split and read.whole().dtype == np.int64
        assert np.array_equal(read.whole(), written.values)
        assert read.read(3, 60).dtype == np.int64
        assert np.array_equal(read.read(3, 60)[: written.length - 3], written.values[3:])
    assert np.array_equal(level.codebook, codebook)
    assert level.info == {"tier": 1, "codes_per_second": 2000.0}
    # A codes directory is what load_level finds there, whatever the sample rate.
    assert np.array_equal(load_level(tmp_path, 16000)[0].pieces[0].whole(), pieces[0].values)
    assert [a.shape for a in code_arrays(level.pieces)] == [(50,), (7,), (20,)]


def test_codes_that_do_not_match_their_records_or_an_old_directory_are_refused(
    tmp_path,
) -> None:
    pieces = _pieces()
    codebook = np.zeros((300, 4), dtype=np.float32)
    records = [{"id": p.id, "split": p.split, "length": p.length} for p in pieces]
    with pytest.raises(ValueError, match="piece a: 6 codes, but its record says 50"):
        write_codes(tmp_path, records, (p.whole()[:6] for p in pieces), codebook, {})
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left
    with pytest.raises(ValueError, match="more code arrays than the 2 records"):
        write_codes(tmp_path, records[:2], (p.whole() for p in pieces), codebook, {})
    old = tmp_path / "old"
    old.mkdir()
    (old / "codes.npz").write_bytes(b"")
    with pytest.raises(WavegenError, match="format before they were memory-mapped"):
        load_level(old, 16000)
    with pytest.raises(TypeError, match="holds audio"):
        code_arrays([LevelPiece("x", "train", np.zeros(3, dtype=np.float32))])


def test_digest_follows_the_codes(tmp_path) -> None:
    pieces = _pieces()
    codebook = np.zeros((300, 4), dtype=np.float32)
    _write(tmp_path, pieces, codebook, {})
    before = level_digest(tmp_path)
    assert level_digest(tmp_path) == before
    pieces[1].values[0] += 1
    _write(tmp_path, pieces, codebook, {})
    assert level_digest(tmp_path) != before


def test_training_uses_train_and_unlabelled_and_a_missing_split_is_named_so(caplog) -> None:
    level = Level(_pieces(), None, {})
    train = training_split(level)
    assert [p.id for p in train] == ["a", "c"]
    assert held_out_or_train(level.split("test"), train, "x") == (level.split("test"), "eval")
    # No validation piece: the training pieces, under a name that says so, and a warning.
    pieces, prefix = held_out_or_train(level.split("validation"), train, "train_x")
    assert [p.id for p in pieces] == ["a", "c"] and prefix == "eval_on_train"
    assert "train_x: no piece held out" in caplog.text
    with pytest.raises(ValueError, match="no piece"):
        training_split(Level([LevelPiece("b", "test", np.zeros(3))], None, {}))


def test_excerpts_depend_on_seed_and_step_only_and_pad_short_pieces() -> None:
    pieces = _pieces()
    first = excerpt_batch(pieces, seed=3, step=5, batch_size=16, segment=30)
    assert first.shape == (16, 30)
    assert np.array_equal(first, excerpt_batch(pieces, seed=3, step=5, batch_size=16, segment=30))
    assert not np.array_equal(
        first, excerpt_batch(pieces, seed=3, step=6, batch_size=16, segment=30)
    )
    joined = {tuple(p.values) for p in pieces}
    for row in first.numpy():
        # Every excerpt is a window of one piece, zeros past its end.
        assert any(
            any(
                np.array_equal(row[: min(30, len(v) - s)], np.array(v[s : s + 30]))
                and not row[min(30, len(v) - s) :].any()
                for s in range(max(len(v) - 30, 0) + 1)
            )
            for v in joined
        )
