"""The WaveNet vocoder: ``model.py`` (the network and its spec), ``generation.py`` (its
fast generation engines, a mixin the model inherits) and ``config.py``."""
