"""Models, one folder per role: ``transcription/`` (Onsets and Frames), ``symbolic/`` (the
Music Transformer), ``hierarchy/`` (VQ-VAE tiers, quantiser, prior) and ``vocoders/``
(the registry, the parts the families share, one folder per family). Each config class
sits beside its model as ``config.py``; ``blocks.py`` and ``spec.py`` are shared."""
