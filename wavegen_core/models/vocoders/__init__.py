"""MIDI-conditioned vocoders. ``registry.py`` maps a family's name to its folder and
imports a family only when asked for it; ``config.py`` holds what every family's params
section shares and finds the families; ``conditioning.py``, ``excitation.py``,
``oscillators.py`` and ``adversarial.py`` are the parts families share. Each family is a
folder ``<family>/`` with ``config.py`` (its params section, declarations only) and
``model.py`` (the network, its losses, its sampling, ending with its spec).

Nothing is imported here: the params schema reads every family's ``config.py``, and a
stage must not load a family's network by doing so."""
