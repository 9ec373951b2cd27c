"""Corpora: discovery of sources, preparation into aligned audio + MIDI, the manifest,
training excerpts, and the codes of the learnt hierarchy."""
