"""sal-lightning: SAL-Net weakly supervised semantic segmentation for PyTorch Lightning.

The pure-PyTorch building blocks (:mod:`sal_lightning.losses`, :mod:`sal_lightning.nn`,
:mod:`sal_lightning.scoring`) import without Lightning. The top-level names below are resolved
lazily, so ``import sal_lightning`` stays cheap and ``from sal_lightning import SelectionLoss`` does
not pull in Lightning either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sal_lightning._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "SelectionLoss": "sal_lightning.losses",
    "AttentionLoss": "sal_lightning.losses",
    "Pipeline": "sal_lightning.pipeline",
    "VOCSegmentationDataModule": "sal_lightning.data.datamodules",
    "VOCClassificationDataModule": "sal_lightning.data.datamodules",
    "MaskScorerDataModule": "sal_lightning.data.datamodules",
    "SALSegmenter": "sal_lightning.models",
    "MaskScorer": "sal_lightning.models",
    "AgreementNet": "sal_lightning.models",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from sal_lightning.data.datamodules import MaskScorerDataModule as MaskScorerDataModule
    from sal_lightning.data.datamodules import VOCClassificationDataModule as VOCClassificationDataModule
    from sal_lightning.data.datamodules import VOCSegmentationDataModule as VOCSegmentationDataModule
    from sal_lightning.losses import AttentionLoss as AttentionLoss
    from sal_lightning.losses import SelectionLoss as SelectionLoss
    from sal_lightning.models import AgreementNet as AgreementNet
    from sal_lightning.models import MaskScorer as MaskScorer
    from sal_lightning.models import SALSegmenter as SALSegmenter
    from sal_lightning.pipeline import Pipeline as Pipeline


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
