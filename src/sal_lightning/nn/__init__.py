"""Network building blocks, pure PyTorch (no Lightning import)."""

from sal_lightning.nn.builder import build_deeplab
from sal_lightning.nn.classifier import ClassifierOutput, HybridDilatedClassifier
from sal_lightning.nn.deeplab import DeepLab, DeepLabOutput, param_groups, upsample_logits
from sal_lightning.nn.gdn import GDN
from sal_lightning.nn.smp_deeplab import SmpDeepLab
from sal_lightning.nn.vgg import VGG16DeepLab
from sal_lightning.nn.weights import load_weights

__all__: list[str] = [
    "ClassifierOutput",
    "DeepLab",
    "DeepLabOutput",
    "GDN",
    "HybridDilatedClassifier",
    "SmpDeepLab",
    "VGG16DeepLab",
    "build_deeplab",
    "load_weights",
    "param_groups",
    "upsample_logits",
]
