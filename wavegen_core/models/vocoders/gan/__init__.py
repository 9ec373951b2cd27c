"""The HiFi-GAN vocoder: ``model.py`` (the generator and its spec; the discriminators and
their losses are shared, in ``vocoders/adversarial.py``) and ``config.py``."""
