"""Network building blocks, pure PyTorch (no Lightning import)."""

from sal_lightning.nn.deeplab import (
    DeepLab,
    DeepLabOutput,
    SmpDeepLab,
    build_deeplab,
    load_weights,
    param_groups,
    upsample_logits,
)
from sal_lightning.nn.vgg import VGG16DeepLab

__all__: list[str] = [
    "DeepLab",
    "DeepLabOutput",
    "SmpDeepLab",
    "VGG16DeepLab",
    "build_deeplab",
    "load_weights",
    "param_groups",
    "upsample_logits",
]
