"""The commands: one module per command, each with ``main(argv) -> exit status``.

They sit on top of the pipeline and nothing in the library imports them. Each is started as
``sync-tva COMMAND``, ``python -m sync_tva COMMAND`` (``sync_tva/__main__.py``) or through its
entry module ``python -m sync_tva.COMMAND`` (``sync_tva/run.py`` and the like, a few lines each).
"""
