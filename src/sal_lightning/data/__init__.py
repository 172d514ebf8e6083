"""VOC-format data: constants, file IO, datasets, DataModules, transforms, synthetic data.

Submodules: :mod:`~sal_lightning.data.voc` (class names, palette, normalisation),
:mod:`~sal_lightning.data.io` (images, label, saliency and reference PNGs, CAM files, id lists,
scores table),
:mod:`~sal_lightning.data.synthetic` (a VOC-format synthetic dataset),
:mod:`~sal_lightning.data.layout` (roots, split lists, tags), :mod:`~sal_lightning.data.datasets`,
:mod:`~sal_lightning.data.transforms`, :mod:`~sal_lightning.data.datamodules`,
:mod:`~sal_lightning.data.scorer_data` (mask-scorer samples), :mod:`~sal_lightning.data.proxy_data`
(datasets over a folder of proxies, for the scoring stages), :mod:`~sal_lightning.data.saliency`
(where saliency maps come from), :mod:`~sal_lightning.data.download`,
:mod:`~sal_lightning.data.classes` (the ``classes.txt`` contract, palettes for any class count),
:mod:`~sal_lightning.data.coco` (MS COCO 2014 -> a VOC-layout root; needs the ``coco`` extra).
Names below are resolved lazily, so importing this package does not import Lightning.
"""

from __future__ import annotations

from sal_lightning._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "VOC_CLASSES": "sal_lightning.data.voc",
    "VOC_PALETTE": "sal_lightning.data.voc",
    "NUM_CLASSES": "sal_lightning.data.voc",
    "NUM_FOREGROUND": "sal_lightning.data.voc",
    "IGNORE_INDEX": "sal_lightning.data.voc",
    "IMAGENET_MEAN": "sal_lightning.data.voc",
    "IMAGENET_STD": "sal_lightning.data.voc",
    "make_synthetic_voc": "sal_lightning.data.synthetic",
    "VOCDataset": "sal_lightning.data.datasets",
    "SegmentationTransform": "sal_lightning.data.transforms",
    "train_transform": "sal_lightning.data.transforms",
    "eval_transform": "sal_lightning.data.transforms",
    "pad_collate": "sal_lightning.data.transforms",
    "VOCSegmentationDataModule": "sal_lightning.data.datamodules",
    "VOCClassificationDataModule": "sal_lightning.data.datamodules",
    "MaskScorerDataModule": "sal_lightning.data.datamodules",
    "ScorerSample": "sal_lightning.scoring.synthesis",
    "ScorerSampleDataset": "sal_lightning.data.scorer_data",
    "write_scorer_samples": "sal_lightning.data.scorer_data",
    "read_scorer_index": "sal_lightning.data.scorer_data",
    "read_classes": "sal_lightning.data.classes",
    "write_classes": "sal_lightning.data.classes",
    "convert_coco": "sal_lightning.data.coco",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
