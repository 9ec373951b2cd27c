"""MIDI reading and validation, piano rolls, performance events, and the Bach chorale
corpus as piano MIDI."""
