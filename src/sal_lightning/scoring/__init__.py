"""Proxy-annotation quality scores (SAL-Net Sec. III-B), pure PyTorch (no Lightning import)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sal_lightning._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "boundary_accuracy": "sal_lightning.scoring.metrics",
    "class_distribution": "sal_lightning.scoring.metrics",
    "coarse_score": "sal_lightning.scoring.metrics",
    "fine_score": "sal_lightning.scoring.metrics",
    "foreground": "sal_lightning.scoring.metrics",
    "mask_objectness": "sal_lightning.scoring.objectness",
}

__all__: list[str] = list(_EXPORTS)

if TYPE_CHECKING:
    from sal_lightning.scoring.metrics import boundary_accuracy as boundary_accuracy
    from sal_lightning.scoring.metrics import class_distribution as class_distribution
    from sal_lightning.scoring.metrics import coarse_score as coarse_score
    from sal_lightning.scoring.metrics import fine_score as fine_score
    from sal_lightning.scoring.metrics import foreground as foreground
    from sal_lightning.scoring.objectness import mask_objectness as mask_objectness


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
