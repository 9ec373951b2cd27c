"""The symbolic model: the Music Transformer (``music_transformer.py``, config in
``config.py``) and its relative attention (``attention.py``), which the prior shares."""
