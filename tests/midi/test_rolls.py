"""Piano rolls: exact decoding of hand-built activations and a MIDI round trip."""

from __future__ import annotations

import numpy as np
import pretty_midi

from wavegen_core.midi.chorales import ChoralesConfig, chorale_ids, chorale_to_midi
from wavegen_core.midi.rolls import (
    KEY_COUNT,
    LOWEST_KEY,
    NoteDecoder,
    NoteDecodingConfig,
    decode_notes,
    midi_to_targets,
    notes_to_midi,
    piano_notes,
)

FPS = 10.0  # a round frame rate keeps the expected times exact


def _as_tuples(notes: list[pretty_midi.Note]) -> list[tuple[int, float, float, int]]:
    return [(note.pitch, note.start, note.end, note.velocity) for note in notes]


def test_hand_built_activations_decode_to_exact_notes() -> None:
    onsets = np.zeros((20, KEY_COUNT), dtype=np.float32)
    frames = np.zeros_like(onsets)
    velocity = np.zeros_like(onsets)
    c4, e4, g4 = 60 - LOWEST_KEY, 64 - LOWEST_KEY, 67 - LOWEST_KEY
    # C4: onset held high for two frames (one note), sounding frames 2..7.
    onsets[2:4, c4] = 0.9
    frames[2:8, c4] = 0.8
    velocity[2, c4] = 100 / 127
    # E4: struck at frame 5, re-struck at frame 9 while still sounding, ends at 12.
    onsets[5, e4] = onsets[9, e4] = 0.7
    frames[5:12, e4] = 0.9
    velocity[5, e4], velocity[9, e4] = 40 / 127, 1.5  # beyond 1 clips to 127
    # G4: a one-frame blip that min_note_seconds drops.
    onsets[15, g4] = frames[15, g4] = 0.9
    # Frames without an onset never start a note.
    frames[0:4, g4] = 0.9

    config = NoteDecodingConfig(min_note_seconds=0.15)
    notes = decode_notes(onsets, frames, velocity, config, FPS)

    assert _as_tuples(notes) == [
        (60, 0.2, 0.8, 100),
        (64, 0.5, 0.9, 40),
        (64, 0.9, 1.2, 127),
    ]
    kept = decode_notes(onsets, frames, velocity, NoteDecodingConfig(), FPS)
    assert (67, 1.5, 1.6, 1) in _as_tuples(kept)


def test_a_weak_onset_inside_a_held_note_restrikes_only_above_the_restrike_threshold() -> None:
    onsets = np.zeros((20, KEY_COUNT), dtype=np.float32)
    frames = np.zeros_like(onsets)
    velocity = np.full_like(onsets, 0.5)
    c4, e4 = 60 - LOWEST_KEY, 64 - LOWEST_KEY
    # C4 held over frames 2..15; a weak onset (a partial of another note) at frame 8.
    onsets[2, c4], onsets[8, c4] = 0.95, 0.6
    frames[2:16, c4] = 0.9
    # E4 held over frames 2..15 and truly re-struck at frame 8, the onset rising over
    # two frames; a silent key takes a weak onset as a new note (frame 17).
    onsets[2, e4], onsets[8:10, e4], onsets[17, e4] = 0.95, (0.6, 0.97), 0.6
    frames[2:16, e4] = frames[17:19, e4] = 0.9

    split = decode_notes(onsets, frames, velocity, NoteDecodingConfig(), FPS)
    assert [(n.pitch, n.start) for n in split] == [
        (60, 0.2),
        (64, 0.2),
        (60, 0.8),
        (64, 0.8),
        (64, 1.7),
    ]
    config = NoteDecodingConfig(restrike_threshold=0.9)
    held = decode_notes(onsets, frames, velocity, config, FPS)
    assert [(n.pitch, n.start, n.end) for n in held] == [
        (60, 0.2, 1.6),
        (64, 0.2, 0.9),
        (64, 0.9, 1.6),
        (64, 1.7, 1.9),
    ]
    # Fed frame by frame, the decoder carries the restrike state across blocks.
    decoder = NoteDecoder(config, FPS)
    for row in range(len(onsets)):
        decoder.feed(onsets[row : row + 1], frames[row : row + 1], velocity[row : row + 1])
    assert _as_tuples(decoder.finish()) == _as_tuples(held)


def test_a_note_sounding_at_the_end_is_closed_there() -> None:
    onsets = np.zeros((6, KEY_COUNT), dtype=np.float32)
    frames = np.zeros_like(onsets)
    onsets[3, 0] = frames[3:, 0] = 1.0
    notes = decode_notes(onsets, frames, np.full_like(onsets, 0.5), NoteDecodingConfig(), FPS)
    assert _as_tuples(notes) == [(LOWEST_KEY, 0.3, 0.6, 64)]


def test_chorale_round_trips_through_targets_within_one_frame() -> None:
    fps = 16000 / 512
    midi = chorale_to_midi(chorale_ids()[0], ChoralesConfig(), seed=7)
    reference = piano_notes(midi)
    n_frames = int(np.ceil(midi.get_end_time() * fps)) + 2
    targets = midi_to_targets(midi, n_frames, fps)
    assert all(values.shape == (n_frames, KEY_COUNT) for values in targets.values())
    assert targets["onsets"].sum() == len(reference)

    decoded = decode_notes(
        targets["onsets"], targets["frames"], targets["velocity"], NoteDecodingConfig(), fps
    )

    assert len(decoded) == len(reference)
    # Notes starting within the same frame come out by pitch.
    reference.sort(key=lambda note: (round(note.start * fps), note.pitch))
    for want, got in zip(reference, decoded, strict=True):
        assert got.pitch == want.pitch
        assert abs(got.start - want.start) <= 1 / fps
        assert abs(got.end - want.end) <= 1 / fps
        assert abs(got.velocity - want.velocity) <= 1


def test_notes_to_midi_holds_the_notes() -> None:
    notes = [pretty_midi.Note(velocity=80, pitch=60, start=0.0, end=0.5)]
    midi = notes_to_midi(notes)
    assert len(midi.instruments) == 1 and not midi.instruments[0].is_drum
    assert _as_tuples(midi.instruments[0].notes) == [(60, 0.0, 0.5, 80)]


def test_decoding_in_blocks_equals_decoding_at_once() -> None:
    """Notes that span block boundaries come out whole: streaming changes nothing."""
    rng = np.random.default_rng(3)
    n_frames = 400
    onsets = (rng.random((n_frames, KEY_COUNT)) < 0.03).astype(np.float32)
    # Frames switch on and off in runs, so that notes last several frames.
    frames = (np.cumsum(rng.random((n_frames, KEY_COUNT)) < 0.15, axis=0) % 2).astype(np.float32)
    velocity = rng.random((n_frames, KEY_COUNT)).astype(np.float32)
    config = NoteDecodingConfig(min_note_seconds=0.2)
    whole = decode_notes(onsets, frames, velocity, config, FPS)
    decoder = NoteDecoder(config, FPS)
    cuts = [0, 1, 57, 58, 200, 333, n_frames]
    for first, end in zip(cuts[:-1], cuts[1:], strict=True):
        decoder.feed(onsets[first:end], frames[first:end], velocity[first:end])
    assert len(whole) > 100
    assert _as_tuples(decoder.finish()) == _as_tuples(whole)


def _reference_targets(midi, n_frames: int, fps: float) -> dict[str, np.ndarray]:
    """The whole-piece targets written note by note: the rule the note table follows."""
    from wavegen_core.midi.rolls import TARGET_NAMES, piano_notes

    targets = {name: np.zeros((n_frames, 88), dtype=np.float32) for name in TARGET_NAMES}
    for note in piano_notes(midi):
        key = note.pitch - 21
        onset = int(round(note.start * fps))
        offset = max(int(round(note.end * fps)), onset + 1)
        if onset >= n_frames:
            continue
        targets["frames"][onset:offset, key] = 1.0
        targets["onsets"][onset, key] = 1.0
        targets["velocity"][onset, key] = note.velocity / 127
        if offset < n_frames:
            targets["offsets"][offset, key] = 1.0
    return targets


def test_any_window_of_the_note_table_is_that_slice_of_the_whole_targets() -> None:
    from wavegen_core.midi.rolls import NoteTable

    rng = np.random.default_rng(3)
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for _ in range(120):  # overlapping, re-struck and very short notes, some past the end
        start = float(rng.uniform(0, 11))
        end = start + float(rng.choice([0.001, 0.05, 0.3, 2.0]))
        pitch, velocity = int(rng.integers(40, 52)), int(rng.integers(1, 128))
        piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))
    midi.instruments.append(piano)
    fps, n_frames = 31.25, 320  # 10.24 s: notes start beyond it too
    whole = _reference_targets(midi, n_frames, fps)
    table = NoteTable.from_midi(midi, fps, n_frames)
    for name, values in midi_to_targets(midi, n_frames, fps).items():
        assert np.array_equal(values, whole[name]), name
    for first, length in [(0, 320), (0, 7), (13, 40), (300, 50), (319, 1), (330, 8)]:
        window = table.window(first, length)
        for name, values in whole.items():
            expected = np.zeros((length, 88), dtype=np.float32)
            rows = values[first : first + length]
            expected[: len(rows)] = rows
            assert np.array_equal(window[name], expected), (name, first, length)
