"""The training machinery every training stage shares, and one recipe per model.

``loop.fit`` runs a resumable, exactly repeatable training loop; the modules beside it
are its parts, usable on their own: device choice (``device``) and dvclive curves with
a summary and a loss picture (``metrics``). Seeds and random-number state
(:mod:`wavegen_core.seeding`) and self-describing checkpoints
(:mod:`wavegen_core.checkpoint`) live on the ground floor, since data and models use
them too.
"""
