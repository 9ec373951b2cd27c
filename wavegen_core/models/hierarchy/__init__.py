"""The learnt hierarchy: a VQ-VAE tier (``vqvae.py``), its vector quantiser
(``quantiser.py``), the prior over the top tier's codes (``prior.py``), the tiers and
prior put together (``stack.py``), and their configs (``config.py``)."""
