"""Each model's config class, beside the models in a package of their own: the params
schema (:mod:`wavegen_core.config`), which every stage loads, composes them without
importing any network's code, so a stage's code deps in ``dvc.yaml`` name this folder
and the networks it really runs. ``<name>.py`` configures ``models/<name>.py``."""
