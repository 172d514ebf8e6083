"""LightningModules: SALSegmenter, MaskScorer, AgreementNet, ProxyNet, CAMClassifier, CoarseScorer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sal_lightning._lazy import lazy_exports

# public name -> module that defines it (resolved lazily: importing one model does not build the others)
_EXPORTS: dict[str, str] = {
    "SALSegmenter": "sal_lightning.models.segmenter",
    "MaskScorer": "sal_lightning.models.scorer",
    "AgreementNet": "sal_lightning.models.agreement_net",
    "ProxyNet": "sal_lightning.models.proxy",
    "CAMClassifier": "sal_lightning.models.cam",
    "CoarseScorer": "sal_lightning.models.coarse",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from sal_lightning.models.agreement_net import AgreementNet as AgreementNet
    from sal_lightning.models.cam import CAMClassifier as CAMClassifier
    from sal_lightning.models.coarse import CoarseScorer as CoarseScorer
    from sal_lightning.models.proxy import ProxyNet as ProxyNet
    from sal_lightning.models.scorer import MaskScorer as MaskScorer
    from sal_lightning.models.segmenter import SALSegmenter as SALSegmenter


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
