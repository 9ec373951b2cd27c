"""Model families, one file each (the network, its losses, inference and its spec), with
its config class in ``configs/<family>.py``; :mod:`wavegen_core.models.spec` says what
a spec offers, and :mod:`wavegen_core.models.vocoders` finds a vocoder family's by name."""
