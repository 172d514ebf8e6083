"""``python -m sal_lightning.paper``: print the fidelity table (``docs/fidelity.md``)."""

from sal_lightning.paper.table import fidelity_table

if __name__ == "__main__":
    print(fidelity_table(), end="")
