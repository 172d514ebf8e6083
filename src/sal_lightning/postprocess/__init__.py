"""Inference post-processing: dense CRF and multi-scale + flip fusion.

Names resolve lazily, so CRF worker processes (which import :mod:`sal_lightning.postprocess.crf`)
load numpy and pydensecrf only, not torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sal_lightning._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CRFSettings": "sal_lightning.postprocess.crf",
    "CRFPool": "sal_lightning.postprocess.crf",
    "DEEPLAB_TEST_CRF": "sal_lightning.postprocess.crf",
    "SEC_TRAIN_CRF": "sal_lightning.postprocess.crf",
    "binary_crf": "sal_lightning.postprocess.crf",
    "dense_crf": "sal_lightning.postprocess.crf",
    "dense_crf_batch": "sal_lightning.postprocess.crf",
    "multiscale_flip_probs": "sal_lightning.postprocess.fusion",
    "scaled_size": "sal_lightning.postprocess.fusion",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from sal_lightning.postprocess.crf import DEEPLAB_TEST_CRF as DEEPLAB_TEST_CRF
    from sal_lightning.postprocess.crf import SEC_TRAIN_CRF as SEC_TRAIN_CRF
    from sal_lightning.postprocess.crf import CRFPool as CRFPool
    from sal_lightning.postprocess.crf import CRFSettings as CRFSettings
    from sal_lightning.postprocess.crf import binary_crf as binary_crf
    from sal_lightning.postprocess.crf import dense_crf as dense_crf
    from sal_lightning.postprocess.crf import dense_crf_batch as dense_crf_batch
    from sal_lightning.postprocess.fusion import multiscale_flip_probs as multiscale_flip_probs
    from sal_lightning.postprocess.fusion import scaled_size as scaled_size


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
