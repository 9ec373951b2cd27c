"""The DDSP piano: ``model.py``, ``inharmonicity.py`` (each key's stretched partials,
measured from the training audio) and ``config.py``."""
