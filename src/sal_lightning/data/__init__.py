"""VOC-format data: constants, file IO, datasets, DataModules, transforms, synthetic data.

Submodules: :mod:`~sal_lightning.data.voc` (class names, palette, normalisation),
:mod:`~sal_lightning.data.io` (images, label PNGs, id lists, scores table),
:mod:`~sal_lightning.data.synthetic` (a VOC-format synthetic dataset). Names below are resolved
lazily, so importing this package does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

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
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sal_lightning.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
