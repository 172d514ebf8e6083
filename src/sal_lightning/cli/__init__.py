"""The ``sal-lightning`` command line: one entry point (:func:`main`), every command a jsonargparse or
LightningCLI shell over the stage functions."""

from sal_lightning.cli.main import main

__all__: list[str] = ["main"]
