"""``python -m sal_lightning``: the same as the ``sal-lightning`` command."""

from sal_lightning.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
