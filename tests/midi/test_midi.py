"""MIDI reading and the chorale performances."""

from __future__ import annotations

import pretty_midi
import pytest

from tests.conftest import scale_midi
from wavegen_core.midi.chorales import ChoralesConfig, _merge_unisons, chorale_ids, chorale_to_midi
from wavegen_core.midi.io import MidiReadError, load_midi, write_midi


def test_truncated_midi_is_refused(tmp_path) -> None:
    good = tmp_path / "good.mid"
    write_midi(good, scale_midi([60, 64, 67]))
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(good.read_bytes()[:30])
    assert len(load_midi(good).instruments[0].notes) == 3
    with pytest.raises(MidiReadError, match="unreadable MIDI"):
        load_midi(truncated)


def test_midi_without_notes_is_refused_unless_a_transcription_may_be_empty(tmp_path) -> None:
    path = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(path))
    with pytest.raises(MidiReadError, match="no notes"):
        load_midi(path)
    # A transcription of silence has no notes and is still a transcription.
    assert load_midi(path, allow_empty=True).instruments == []
    (tmp_path / "zero.mid").write_bytes(b"")
    with pytest.raises(MidiReadError, match="empty file"):
        load_midi(tmp_path / "zero.mid", allow_empty=True)


def test_chorale_corpus_is_bundled_and_unique() -> None:
    ids = chorale_ids()
    assert len(ids) == len(set(ids)) >= 300
    assert ids[0].startswith("bach/")


def test_chorale_performance_is_seeded() -> None:
    config = ChoralesConfig(velocity_std=12.0, onset_jitter=0.01)
    first = chorale_to_midi("bach/bwv269", config, seed=1).instruments[0].notes
    again = chorale_to_midi("bach/bwv269", config, seed=1).instruments[0].notes
    other = chorale_to_midi("bach/bwv269", config, seed=2).instruments[0].notes
    key = [(n.pitch, n.start, n.end, n.velocity) for n in first]
    assert key == [(n.pitch, n.start, n.end, n.velocity) for n in again]
    assert key != [(n.pitch, n.start, n.end, n.velocity) for n in other]
    assert len({n.velocity for n in first}) > 5  # humanised, not one flat velocity


def test_chorale_tempo_sets_the_duration() -> None:
    slow = chorale_to_midi("bach/bwv269", ChoralesConfig(tempo_bpm=60, onset_jitter=0), seed=1)
    fast = chorale_to_midi("bach/bwv269", ChoralesConfig(tempo_bpm=120, onset_jitter=0), seed=1)
    assert slow.get_end_time() == pytest.approx(2 * fast.get_end_time(), rel=1e-6)


def test_unison_voices_become_one_key() -> None:
    notes = [
        pretty_midi.Note(60, 60, 0.0, 1.0),
        pretty_midi.Note(90, 60, 0.5, 1.5),
        pretty_midi.Note(70, 60, 2.0, 2.5),
        pretty_midi.Note(70, 64, 0.0, 1.0),
    ]
    merged = _merge_unisons(notes)
    assert [(n.pitch, n.start, n.end, n.velocity) for n in merged] == [
        (60, 0.0, 1.5, 90),
        (64, 0.0, 1.0, 70),
        (60, 2.0, 2.5, 70),
    ]
