"""Proxy-annotation quality scores (SAL-Net Sec. III-B), pure PyTorch (no Lightning import)."""

from sal_lightning.scoring.metrics import boundary_accuracy, class_distribution, coarse_score, foreground
from sal_lightning.scoring.objectness import mask_objectness

__all__: list[str] = [
    "boundary_accuracy",
    "class_distribution",
    "coarse_score",
    "foreground",
    "mask_objectness",
]
