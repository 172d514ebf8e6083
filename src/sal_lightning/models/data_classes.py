"""The one check that a model and its data agree on the class list.

A model's ``num_classes`` is K, background included (21 for VOC, 81 for COCO 2014); its data's is
the root's: the length of its ``classes.txt``, 21 without one. The trainer commands fill an unset
``num_classes`` from the data (:mod:`sal_lightning.cli.lightning`); when both are given and differ,
:func:`check_data_classes` stops the run at ``setup``, before a step, with the fix.
"""

from __future__ import annotations

from typing import Any

from sal_lightning.data.classes import CLASSES_FILE


def check_data_classes(module: Any, num_classes: int) -> None:
    """Raise ``ValueError`` when ``module``'s trainer has a DataModule whose ``num_classes`` differs.

    ``module``: a LightningModule (attached to a trainer or not; without a DataModule, or one that
    does not say its classes, nothing is checked). ``num_classes``: the model's K.
    """
    trainer = getattr(module, "_trainer", None)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    data_classes = getattr(datamodule, "num_classes", None)
    if not isinstance(data_classes, int) or data_classes == num_classes:
        return
    root = getattr(datamodule, "root", "the data root")
    raise ValueError(
        f"num_classes: the model has {num_classes} classes (background included) but {root} has "
        f"{data_classes} (its {CLASSES_FILE}, or VOC's 21 without one); leave the model's "
        "num_classes unset to take the data's, or fix the class file"
    )
