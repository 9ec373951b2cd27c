"""MIDI reading and validation, and the Bach chorale corpus as piano MIDI."""

from wavegen_core.midi.io import MidiReadError, load_midi, write_midi

__all__ = ["MidiReadError", "load_midi", "write_midi"]
