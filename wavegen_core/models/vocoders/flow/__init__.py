"""The flow vocoder (WaveGlow-style): ``model.py`` and ``config.py``."""
