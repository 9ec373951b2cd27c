"""Audio I/O (read, downmix, resample, atomic write), MIDI rendering, spectral measures."""
