"""Performance events: the vocabulary, exact encodings, round trips, sustain, augmentation."""

from __future__ import annotations

import pretty_midi
import pytest

from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi
from wavegen_core.midi.events import (
    END,
    PAD,
    START,
    EventsConfig,
    EventVocabulary,
    augment_notes,
    decode_events,
    encode_file,
    encode_midi,
    encode_notes,
    events_seconds,
    events_to_midi,
    performance_notes,
)
from wavegen_core.midi.io import MidiReadError

VOCAB = EventVocabulary(EventsConfig())
STEP = VOCAB.config.time_step


def _note(pitch: int, start: float, end: float, velocity: int = 80) -> pretty_midi.Note:
    return pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end)


def _spans(notes: list[pretty_midi.Note]) -> list[tuple[int, float, float]]:
    """(pitch, start, end) of each note, times rounded to whole steps of the default grid."""
    return [(note.pitch, round(note.start / STEP), round(note.end / STEP)) for note in notes]


def _round_trip(notes: list[pretty_midi.Note], vocab: EventVocabulary = VOCAB) -> list:
    return decode_events(encode_notes(notes, vocab), vocab)


def _describe(tokens: list[int]) -> list[str]:
    return [VOCAB.describe(token) for token in tokens]


def _pedalled_midi(
    notes: list[pretty_midi.Note], pedal: list[tuple[float, int]]
) -> pretty_midi.PrettyMIDI:
    """One piano part holding ``notes``, with sustain-pedal (CC 64) changes (time, value)."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.extend(notes)
    piano.control_changes.extend(
        pretty_midi.ControlChange(number=64, value=value, time=time) for time, value in pedal
    )
    midi.instruments.append(piano)
    return midi


def test_vocabulary_layout_at_the_paper_values() -> None:
    assert VOCAB.size == 391 == 3 + 388
    assert (PAD, START, END) == (0, 1, 2)
    ids = (
        [VOCAB.note_on(pitch) for pitch in range(128)]
        + [VOCAB.note_off(pitch) for pitch in range(128)]
        + [VOCAB.time_shift(steps) for steps in range(1, 101)]
        + [VOCAB.velocity(index) for index in range(32)]
    )
    assert ids == list(range(3, 391))  # distinct, contiguous, in the documented order
    assert (VOCAB.note_on(0), VOCAB.note_on(127)) == (3, 130)
    assert (VOCAB.note_off(0), VOCAB.note_off(127)) == (131, 258)
    assert [VOCAB.describe(token) for token in (PAD, START, END)] == ["PAD", "START", "END"]
    assert VOCAB.describe(VOCAB.note_on(60)) == "NOTE_ON(60)"
    assert VOCAB.describe(VOCAB.note_off(61)) == "NOTE_OFF(61)"
    assert VOCAB.describe(VOCAB.time_shift(12)) == "TIME_SHIFT(12)"
    assert VOCAB.describe(VOCAB.velocity(7)) == "VELOCITY(7)"
    assert [VOCAB.shift_steps(VOCAB.time_shift(n)) for n in (1, 50, 100)] == [1, 50, 100]
    assert VOCAB.shift_steps(VOCAB.note_on(60)) == 0
    assert VOCAB.is_time_shift(VOCAB.time_shift(1)) and VOCAB.is_time_shift(VOCAB.time_shift(100))
    assert not VOCAB.is_time_shift(VOCAB.note_off(127)) and not VOCAB.is_time_shift(
        VOCAB.velocity(0)
    )
    for bad in (
        lambda: VOCAB.time_shift(0),
        lambda: VOCAB.time_shift(101),
        lambda: VOCAB.note_on(128),
    ):
        with pytest.raises(ValueError):
            bad()


def test_other_grids_change_the_size() -> None:
    config = EventsConfig(time_step=0.02, max_shift_steps=50, velocity_bins=16)
    vocab = EventVocabulary(config)
    assert vocab.size == 3 + 128 + 128 + 50 + 16
    assert vocab.velocity(15) == vocab.size - 1
    assert vocab.time_shift(50) == vocab.velocity(0) - 1
    assert vocab.describe(vocab.time_shift(50)) == "TIME_SHIFT(50)"
    # One 50-step shift of 20 ms covers a second.
    tokens = encode_notes([_note(60, 1.0, 1.5)], vocab)
    assert tokens[0] == vocab.time_shift(50)
    assert events_seconds(tokens, vocab) == pytest.approx(1.5)


@pytest.mark.parametrize("bins", [1, 16, 32, 127])
def test_velocity_bins_cover_1_to_127_and_invert(bins: int) -> None:
    vocab = EventVocabulary(EventsConfig(velocity_bins=bins))
    bin_of = [vocab.velocity_bin(velocity) for velocity in range(1, 128)]
    assert bin_of == sorted(bin_of) and set(bin_of) == set(range(bins))  # every bin used
    for velocity in range(1, 128):
        middle = vocab.bin_velocity(vocab.velocity_bin(velocity))
        assert vocab.velocity_bin(middle) == vocab.velocity_bin(velocity)
        assert abs(middle - velocity) <= 127 / bins
    assert (vocab.velocity_bin(0), vocab.velocity_bin(200)) == (0, bins - 1)  # clamped


def test_chorale_round_trip_within_a_step_and_a_bin() -> None:
    config = ChoralesConfig()
    midi = chorale_to_midi(chorale_ids()[0], config, seed=3)
    original = midi.instruments[0].notes
    tokens = encode_midi(midi, VOCAB)
    decoded = decode_events(tokens, VOCAB)
    assert not {PAD, START, END} & set(tokens)
    assert len(decoded) == len(original) > 100
    # Jittered onsets a fraction of a step apart swap order once quantised, so the
    # originals are sorted by (start, pitch, end) on the grid, as the decoded notes are.
    ordered = sorted(
        original,
        key=lambda note: (round(note.start / STEP), note.pitch, round(note.end / STEP)),
    )
    decoded = sorted(decoded, key=lambda note: (note.start, note.pitch, note.end))
    for before, after in zip(ordered, decoded, strict=True):
        assert after.pitch == before.pitch
        assert abs(after.start - before.start) <= STEP + 1e-9
        assert abs(after.end - before.end) <= STEP + 1e-9
        assert abs(after.velocity - before.velocity) <= 127 / VOCAB.config.velocity_bins
    last_end = max(note.end for note in original)
    assert abs(events_seconds(tokens, VOCAB) - last_end) <= STEP + 1e-9
    rebuilt = events_to_midi(tokens, VOCAB, program=5)
    assert rebuilt.instruments[0].program == 5
    assert len(rebuilt.instruments[0].notes) == len(original)


def test_exact_tokens_of_a_chord_and_a_restrike() -> None:
    notes = [
        _note(64, 0.0, 0.5, velocity=100),
        _note(60, 0.0, 0.5, velocity=100),
        _note(67, 0.25, 0.5, velocity=40),
        _note(60, 0.5, 0.75, velocity=40),  # struck again exactly where the first ends
    ]
    loud, soft = VOCAB.velocity_bin(100), VOCAB.velocity_bin(40)
    assert _describe(encode_notes(notes, VOCAB)) == [
        f"VELOCITY({loud})",
        "NOTE_ON(60)",
        "NOTE_ON(64)",
        "TIME_SHIFT(25)",
        f"VELOCITY({soft})",
        "NOTE_ON(67)",
        "TIME_SHIFT(25)",
        "NOTE_OFF(60)",  # releases before onsets at one step
        "NOTE_OFF(64)",
        "NOTE_OFF(67)",
        "NOTE_ON(60)",  # same bin as the last onset: no VELOCITY event
        "TIME_SHIFT(25)",
        "NOTE_OFF(60)",
    ]
    assert _spans(_round_trip(notes)) == [
        (60, 0, 50),
        (64, 0, 50),
        (67, 25, 50),
        (60, 50, 75),
    ]


def test_staggered_same_pitch_notes_round_trip_exactly() -> None:
    notes = [_note(60, 0.0, 2.0, velocity=30), _note(60, 1.0, 3.0, velocity=120)]
    decoded = _round_trip(notes)
    assert _spans(decoded) == [(60, 0, 200), (60, 100, 300)]
    assert [VOCAB.velocity_bin(note.velocity) for note in decoded] == [
        VOCAB.velocity_bin(30),
        VOCAB.velocity_bin(120),
    ]


def test_nested_same_pitch_notes_pair_first_in_first_out() -> None:
    # Indistinguishable from the staggered case: same onsets, same offsets, paired FIFO.
    nested = [_note(60, 0.0, 3.0), _note(60, 1.0, 2.0)]
    staggered = [_note(60, 0.0, 2.0), _note(60, 1.0, 3.0)]
    assert encode_notes(nested, VOCAB) == encode_notes(staggered, VOCAB)
    assert _spans(_round_trip(nested)) == [(60, 0, 200), (60, 100, 300)]


def test_same_pitch_notes_with_one_onset_keep_their_own_ends() -> None:
    # Written shortest first, so FIFO decoding gives each its own offset and velocity.
    notes = [_note(60, 0.0, 3.0, velocity=120), _note(60, 0.0, 1.0, velocity=10)]
    decoded = _round_trip(notes)
    assert _spans(decoded) == [(60, 0, 100), (60, 0, 300)]
    assert [VOCAB.velocity_bin(note.velocity) for note in decoded] == [
        VOCAB.velocity_bin(10),
        VOCAB.velocity_bin(120),
    ]
    duplicates = [_note(62, 0.5, 1.0), _note(62, 0.5, 1.0)]
    assert _spans(_round_trip(duplicates)) == [(62, 50, 100), (62, 50, 100)]


def test_long_gaps_take_several_time_shifts() -> None:
    notes = [_note(60, 0.0, 0.1), _note(62, 3.6, 3.7)]
    tokens = encode_notes(notes, VOCAB)
    shifts = [VOCAB.shift_steps(token) for token in tokens if VOCAB.is_time_shift(token)]
    assert shifts == [10, 100, 100, 100, 50, 10]
    assert _spans(_round_trip(notes)) == [(60, 0, 10), (62, 360, 370)]
    assert events_seconds(tokens, VOCAB) == pytest.approx(3.7)


def test_extreme_velocities_and_short_notes() -> None:
    notes = [_note(60, 0.0, 0.5, velocity=1), _note(62, 0.0, 0.5, velocity=127)]
    decoded = _round_trip(notes)
    assert [VOCAB.velocity_bin(note.velocity) for note in decoded] == [0, 31]
    exact = EventVocabulary(EventsConfig(velocity_bins=127))
    assert [note.velocity for note in _round_trip(notes, exact)] == [1, 127]
    # Shorter than a step, or even of zero length: one step long.
    blips = [_note(60, 1.0, 1.003), _note(64, 2.0, 2.0), _note(67, 2.0, 2.004)]
    assert _spans(_round_trip(blips)) == [(60, 100, 101), (64, 200, 201), (67, 200, 201)]


def test_negative_onsets_are_clamped_to_zero() -> None:
    assert _spans(_round_trip([_note(60, -0.5, 0.2), _note(61, -0.5, -0.2)])) == [
        (60, 0, 20),
        (61, 0, 1),
    ]


def test_decoding_rules_for_free_token_sequences() -> None:
    tokens = [
        START,
        PAD,
        VOCAB.note_off(50),  # nothing sounds: ignored
        VOCAB.note_on(60),  # before any VELOCITY: the default bin
        VOCAB.velocity(31),
        VOCAB.note_on(64),
        VOCAB.time_shift(30),
        VOCAB.note_off(60),
        VOCAB.note_on(67),  # never released: ends at the final time
        VOCAB.time_shift(20),
        VOCAB.note_on(72),  # never released, at the final time: one step long
        END,
        VOCAB.note_on(40),  # after END: not read
        VOCAB.size,
    ]
    decoded = decode_events(tokens, VOCAB)
    assert _spans(decoded) == [(60, 0, 30), (64, 0, 50), (67, 30, 50), (72, 50, 51)]
    assert decoded[0].velocity == VOCAB.bin_velocity(VOCAB.velocity_bin(64))
    assert decoded[1].velocity == VOCAB.bin_velocity(31)
    assert events_seconds(tokens, VOCAB) == pytest.approx(0.5)


def test_tokens_outside_the_vocabulary_are_refused() -> None:
    tokens = [VOCAB.note_on(60), VOCAB.time_shift(5), VOCAB.size]
    with pytest.raises(ValueError, match=rf"token {VOCAB.size} at position 2"):
        decode_events(tokens, VOCAB)
    with pytest.raises(ValueError, match=r"token -1 at position 0"):
        events_seconds([-1], VOCAB)
    with pytest.raises(ValueError, match=rf"token {VOCAB.size}\b"):
        VOCAB.describe(VOCAB.size)


def test_pedal_extends_a_release_to_the_pedal_up() -> None:
    midi = _pedalled_midi(
        [_note(60, 0.0, 1.0), _note(64, 0.0, 0.4), _note(67, 2.5, 3.0)],
        pedal=[(0.5, 127), (2.0, 0)],
    )
    # 60 is released under the pedal, 64 before it goes down, 67 after it comes up.
    assert _spans(performance_notes(midi)) == [(60, 0, 200), (64, 0, 40), (67, 250, 300)]
    assert _spans(performance_notes(midi, sustain=False)) == [
        (60, 0, 100),
        (64, 0, 40),
        (67, 250, 300),
    ]


def test_restrike_under_the_pedal_ends_the_sustained_note() -> None:
    midi = _pedalled_midi(
        [_note(60, 0.0, 1.0), _note(60, 2.0, 2.5), _note(62, 0.0, 0.5)],
        pedal=[(0.0, 100), (4.0, 10)],
    )
    assert _spans(performance_notes(midi)) == [(60, 0, 200), (62, 0, 400), (60, 200, 400)]
    # The tokens carry the pedal only when the config asks for it.
    with_pedal = decode_events(encode_midi(midi, VOCAB), VOCAB)
    without = EventVocabulary(EventsConfig(sustain=False))
    assert _spans(with_pedal) == [(60, 0, 200), (62, 0, 400), (60, 200, 400)]
    assert _spans(decode_events(encode_midi(midi, without), without)) == [
        (60, 0, 100),
        (62, 0, 50),
        (60, 200, 250),
    ]


def test_pedal_left_down_lasts_to_the_end_of_the_part_and_stays_in_its_part() -> None:
    midi = _pedalled_midi([_note(60, 0.0, 1.0), _note(62, 1.0, 3.0)], pedal=[(0.5, 127)])
    other = pretty_midi.Instrument(program=40)
    other.notes.append(_note(72, 0.0, 1.0))  # no pedal in this part
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(_note(36, 0.0, 0.1))
    midi.instruments.extend([other, drums])
    assert _spans(performance_notes(midi)) == [(60, 0, 300), (72, 0, 100), (62, 100, 300)]


def test_performance_notes_never_change_the_input() -> None:
    notes = [_note(60, 0.0, 1.0), _note(60, 1.5, 2.0)]
    midi = _pedalled_midi(notes, pedal=[(0.5, 127), (3.0, 0)])
    result = performance_notes(midi)
    assert _spans(result) == [(60, 0, 150), (60, 150, 300)]
    assert _spans(midi.instruments[0].notes) == [(60, 0, 100), (60, 150, 200)]
    assert not {id(note) for note in result} & {id(note) for note in notes}


def test_augment_notes_transposes_stretches_and_drops() -> None:
    notes = [_note(60, 1.0, 2.0, velocity=90), _note(125, 0.0, 0.5), _note(2, 0.5, 1.0)]
    up = augment_notes(notes, semitones=3, stretch=1.5)
    assert [(n.pitch, n.start, n.end, n.velocity) for n in up] == [
        (63, 1.5, 3.0, 90),
        (5, 0.75, 1.5, 80),
    ]
    down = augment_notes(notes, semitones=-3, stretch=0.5)
    assert [(n.pitch, n.start, n.end) for n in down] == [(57, 0.5, 1.0), (122, 0.0, 0.25)]
    assert [(n.pitch, n.start) for n in notes] == [(60, 1.0), (125, 0.0), (2, 0.5)]
    with pytest.raises(ValueError, match="stretch"):
        augment_notes(notes, semitones=0, stretch=0.0)


def test_encode_file_reads_midi_and_refuses_corrupt_files(tmp_path) -> None:
    good = tmp_path / "good.mid"
    _pedalled_midi([_note(60, 0.0, 0.5, velocity=100)], pedal=[]).write(str(good))
    assert _describe(encode_file(good, VOCAB)) == [
        f"VELOCITY({VOCAB.velocity_bin(100)})",
        "NOTE_ON(60)",
        "TIME_SHIFT(50)",
        "NOTE_OFF(60)",
    ]
    bad = tmp_path / "bad.mid"
    bad.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MidiReadError):
        encode_file(bad, VOCAB)
