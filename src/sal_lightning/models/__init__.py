"""LightningModules: SALSegmenter, MaskScorer, ProxyNet."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it (resolved lazily: importing one model does not build the others)
_EXPORTS: dict[str, str] = {
    "SALSegmenter": "sal_lightning.models.segmenter",
    "MaskScorer": "sal_lightning.models.scorer",
    "ProxyNet": "sal_lightning.models.proxy",
    "CAMClassifier": "sal_lightning.models.cam",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from sal_lightning.models.cam import CAMClassifier as CAMClassifier
    from sal_lightning.models.proxy import ProxyNet as ProxyNet
    from sal_lightning.models.scorer import MaskScorer as MaskScorer
    from sal_lightning.models.segmenter import SALSegmenter as SALSegmenter


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sal_lightning.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
