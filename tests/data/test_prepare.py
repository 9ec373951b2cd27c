"""prepare_corpus on real files: folders with broken files, a MAESTRO-shaped tree, chorales."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import make_params, scale_midi, tone
from wavegen_core.data.manifest import read_manifest
from wavegen_core.data.prepare import (
    NothingUsable,
    assign_splits,
    fingerprint,
    prepare_corpus,
    prepare_piece,
)
from wavegen_core.data.sources import discover
from wavegen_core.midi.io import load_midi, write_midi


def _folder_corpus(root: Path) -> None:
    (root / "pairs").mkdir(parents=True)
    for name, pitches in [("a", [60, 62, 64, 65]), ("e", [67, 69, 71, 72])]:
        sf.write(root / "pairs" / f"{name}.wav", tone(1.5, 44100, channels=2), 44100)
        write_midi(root / "pairs" / f"{name}.mid", scale_midi(pitches))
    sf.write(root / "live_take.flac", tone(2.0, 22050), 22050)  # audio only: unlabelled
    write_midi(root / "c.mid", scale_midi([48, 52, 55, 60, 64, 67]))  # MIDI only: rendered
    write_midi(root / "f.mid", scale_midi([50, 53, 57, 62, 65, 69]))
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" * 4)
    good = (root / "c.mid").read_bytes()
    (root / "truncated.mid").write_bytes(good[: len(good) // 2])
    (root / "zero.wav").write_bytes(b"")
    (root / "notes.txt").write_text("not a piece")


def test_folder_source_skips_and_lists_bad_files(tmp_path) -> None:
    root = tmp_path / "corpus"
    _folder_corpus(root)
    params = make_params(data={"source": "folder", "root": str(root), "num_workers": 2})
    out = tmp_path / "prepared"
    result = prepare_corpus(params.prepare_job(), out)

    rejected = {
        Path(r["origin"]).name: r["reason"] for r in json.loads((out / "rejected.json").read_text())
    }
    assert set(rejected) == {"corrupt.wav", "truncated.mid", "zero.wav", "notes.txt"}
    assert "not audio" in rejected["notes.txt"]
    assert "unreadable audio" in rejected["corrupt.wav"]
    assert "unreadable MIDI" in rejected["truncated.mid"]
    assert "empty file" in rejected["zero.wav"]

    pieces = {p.id: p for p in read_manifest(out)}
    assert pieces == {p.id: p for p in result.pieces}
    assert set(pieces) == {"pairs__a", "pairs__e", "live_take", "c", "f"}
    assert pieces["live_take"].split == "unlabelled" and not pieces["live_take"].has_midi
    labelled = [p for p in pieces.values() if p.has_midi]
    assert sorted(p.split for p in labelled) == ["test", "train", "train", "validation"]
    for piece in pieces.values():
        info = sf.info(out / piece.audio)
        assert info.samplerate == 16000 and info.channels == 1
        assert info.duration == pytest.approx(piece.duration, abs=1e-3)
    assert pieces["live_take"].duration == pytest.approx(2.0, abs=1e-3)
    # The rendered MIDI-only piece lasts as long as its notes (+ the release tail).
    assert pieces["c"].duration == pytest.approx(1.5 + 0.25, abs=0.05)
    assert load_midi(out / pieces["pairs__a"].midi).instruments[0].notes[0].pitch == 60
    assert not list(tmp_path.glob(".prepared*"))  # staging removed once finished


def _unterminated_midi(path: Path) -> None:
    """One note-on that is never switched off: pretty_midi keeps no note of it."""
    import mido

    song = mido.MidiFile()
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    song.tracks.append(track)
    song.save(path)


def test_a_hostile_folder_prepares_with_every_path_accounted_for(tmp_path) -> None:
    """Files that share a stem, a directory named like audio, a link to nothing, a
    misaligned pair, MIDI without notes or with only an unterminated one beside good
    audio, good MIDI beside empty or unreadable audio, hidden files: each ends up in the
    manifest or in rejected.json with a reason."""
    root = tmp_path / "corpus"
    root.mkdir()
    for suffix in (".ogg", ".flac", ".wav"):  # take: one used, two listed as duplicates
        sf.write(root / f"take{suffix}", tone(2.0, 16000), 16000)
    write_midi(root / "take.mid", scale_midi([60, 62, 64]))
    write_midi(root / "take.midi", scale_midi([60, 62, 64]))
    (root / "x.wav").mkdir()  # a directory named like audio
    (root / "gone.wav").symlink_to(root / "nowhere.wav")
    (root / ".DS_Store").write_bytes(b"\0\0")
    sf.write(root / "long_midi.wav", tone(4.0, 16000), 16000)  # 4 s of audio ...
    write_midi(root / "long_midi.mid", scale_midi([60] * 4, step=100.0))  # ... 400 s of MIDI
    sf.write(root / "silent_score.wav", tone(2.0, 16000), 16000)
    write_midi(root / "silent_score.mid", scale_midi([]))  # no notes
    sf.write(root / "hanging.wav", tone(2.0, 16000), 16000)
    _unterminated_midi(root / "hanging.mid")
    (root / "empty.wav").write_bytes(b"")  # good MIDI beside audio that is rejected
    write_midi(root / "empty.mid", scale_midi([60, 62]))
    (root / "garbled.wav").write_bytes(b"RIFF\x00\x01not a wave file at all")
    write_midi(root / "garbled.mid", scale_midi([60, 62]))
    params = make_params(data={"source": "folder", "root": str(root), "num_workers": 1})
    out = tmp_path / "prepared"

    prepare_corpus(params.prepare_job(), out)

    pieces = {p.id: p for p in read_manifest(out)}
    rejected = {r["origin"]: r["reason"] for r in json.loads((out / "rejected.json").read_text())}
    names = {Path(origin).name: reason for origin, reason in rejected.items()}
    assert "duplicate of take.wav" in names["take.flac"] and "lossless" in names["take.flac"]
    assert "duplicate of take.wav" in names["take.ogg"]
    assert "duplicate of take.mid" in names["take.midi"]
    assert "a directory named like audio" in names["x.wav"]
    assert "a link to nothing" in names["gone.wav"]
    assert "not audio" in names[".DS_Store"]
    assert "ends at 400.00 s, the audio lasts 4.00 s" in names["long_midi.mid"]
    assert "no notes" in names["silent_score.mid"] and "no notes" in names["hanging.mid"]
    # Rejected audio takes the MIDI that was to label it along, with that reason.
    for stem in ("empty", "garbled"):
        assert names[f"{stem}.wav"] and stem not in pieces, names
        assert names[f"{stem}.mid"] == "its audio was rejected"
    # The good audio of a bad pair is kept, unlabelled; the good pair is a pair.
    for name in ("long_midi", "silent_score", "hanging"):
        assert pieces[name].split == "unlabelled" and not pieces[name].has_midi, name
    assert pieces["take"].has_midi and pieces["take"].origin == str(root / "take.wav")
    # Every path under the root (but plain directories) is prepared or rejected.
    everything = {str(p) for p in root.rglob("*") if not (p.is_dir() and not p.suffix)}
    used = {p.origin for p in pieces.values()}
    used |= {str(Path(p.origin).with_suffix(".mid")) for p in pieces.values() if p.has_midi}
    assert used | set(rejected) == everything
    assert not used & set(rejected)


def _maestro_tree(root: Path, as_json: bool) -> None:
    rows = []
    for index, split in enumerate(["train", "train", "validation", "test"]):
        stem = f"2018/MIDI-Unprocessed_{index:02d}_R1"
        (root / "2018").mkdir(parents=True, exist_ok=True)
        sf.write(root / f"{stem}.wav", tone(1.2, 48000, channels=2, freq=220 * (index + 1)), 48000)
        write_midi(root / f"{stem}.midi", scale_midi([57 + index] * 4, step=0.3))
        rows.append(
            {
                "canonical_composer": "Bach",
                "canonical_title": f"Piece {index}",
                "split": split,
                "year": 2018,
                "midi_filename": f"{stem}.midi",
                "audio_filename": f"{stem}.wav",
                "duration": 1.2,
            }
        )
    if as_json:  # v3's JSON is column-oriented: {column: {row index: value}}
        columns = {key: {str(i): row[key] for i, row in enumerate(rows)} for key in rows[0]}
        (root / "maestro-v3.0.0.json").write_text(json.dumps(columns))
    else:
        with open(root / "maestro-v2.0.0.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


@pytest.mark.parametrize("as_json", [False, True])
def test_maestro_layout_keeps_its_splits(tmp_path, as_json) -> None:
    root = tmp_path / "maestro"
    _maestro_tree(root, as_json)
    params = make_params(data={"source": "maestro", "root": str(root), "num_workers": 1})
    result = prepare_corpus(params.prepare_job(), tmp_path / "prepared")
    splits = {p.id: p.split for p in result.pieces}
    assert splits == {
        "MIDI-Unprocessed_00_R1": "train",
        "MIDI-Unprocessed_01_R1": "train",
        "MIDI-Unprocessed_02_R1": "validation",
        "MIDI-Unprocessed_03_R1": "test",
    }
    assert all(p.has_midi and p.source == "maestro" for p in result.pieces)
    assert all(p.duration == pytest.approx(1.2, abs=1e-3) for p in result.pieces)


def test_chorales_are_rendered_with_aligned_midi(tmp_path) -> None:
    params = make_params(data={"max_pieces": 3, "num_workers": 2})
    result = prepare_corpus(params.prepare_job(), tmp_path / "prepared")
    assert len(result.pieces) == 3 and not result.rejected
    assert sorted(p.split for p in result.pieces) == ["test", "train", "validation"]
    for piece in result.pieces:
        midi = load_midi(tmp_path / "prepared" / piece.midi)
        assert abs(piece.duration - midi.get_end_time()) < 0.5
        assert piece.notes == len(midi.instruments[0].notes) > 50


def test_nothing_usable_fails(tmp_path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "zero.wav").write_bytes(b"")
    params = make_params(data={"source": "folder", "root": str(root), "num_workers": 1})
    with pytest.raises(NothingUsable, match="zero.wav: empty file"):
        prepare_corpus(params.prepare_job(), tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


def test_killed_run_resumes_and_never_leaves_a_complete_looking_output(
    tmp_path, monkeypatch
) -> None:
    params = make_params(data={"max_pieces": 3, "num_workers": 1})
    out = tmp_path / "prepared"
    reference = prepare_corpus(params.prepare_job(), tmp_path / "reference")

    # A run killed while writing: two pieces finished in staging, no manifest written.
    items = discover("bach_chorales", "unused")[:3]
    staging = tmp_path / f".prepared.partial-{fingerprint(params.prepare_job())}"
    for item in items[:2]:
        prepare_piece(item, params.prepare_job(), staging)
    assert not out.exists()

    import wavegen_core.data.prepare as prepare_module

    def killed_before_manifest(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "write_manifest", killed_before_manifest)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(params.prepare_job(), out)
    assert not out.exists() and staging.is_dir()

    monkeypatch.undo()
    resumed = prepare_corpus(params.prepare_job(), out)
    assert resumed.resumed == 3
    assert [asdict(p) for p in resumed.pieces] == [asdict(p) for p in reference.pieces]
    for piece in resumed.pieces:
        assert (out / piece.audio).read_bytes() == (
            tmp_path / "reference" / piece.audio
        ).read_bytes()


def test_splits_are_seeded_and_cover_every_split() -> None:
    ids = [f"piece{i}" for i in range(20)]
    first = assign_splits(ids, 0.1, 0.1, seed=3)
    assert first == assign_splits(list(reversed(ids)), 0.1, 0.1, seed=3)
    assert first != assign_splits(ids, 0.1, 0.1, seed=4)
    assert sorted(first.values()).count("test") == 2
    assert assign_splits(ids[:3], 0.05, 0.05, seed=0).values().__len__() == 3
    assert sorted(assign_splits(ids[:3], 0.05, 0.05, seed=0).values()) == [
        "test",
        "train",
        "validation",
    ]
