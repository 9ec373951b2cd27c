"""The last stage's two outputs: every area's headline figures, and a listening page.

``summary.py`` reads what the stages wrote (:class:`~.summary.ReportInputs`) and gathers
the headline figures (``summarize``, ``write_summary``); ``page.py`` writes the page
(``write_page``) from the sections in ``sections.py``, one per area, built from the HTML
fragments and media of ``markup.py``; ``provenance.py`` says what the run was (params
against the profiles, commit, the models' hashes).
"""
