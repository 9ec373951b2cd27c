"""Audio to MIDI: Onsets and Frames (``onsets_frames.py``, config in ``config.py``) and
``transcribers.py``, which puts ours and basic-pitch behind one call."""
