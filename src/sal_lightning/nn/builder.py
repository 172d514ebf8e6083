"""``build_deeplab(name, ...)``: every DeepLab backbone of the library by name."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sal_lightning.nn.deeplab import DeepLab, PadMode
from sal_lightning.nn.weights import load_weights, looks_like_path

_SMP_PREFIX = "deeplabv3_"
_V2_PREFIX = "deeplabv2_"
VGG_BACKBONES = ("vgg16_largefov", "vgg16_aspp")


def _split_weights(encoder_weights: str | os.PathLike[str] | None) -> tuple[str | None, Path | None]:
    """``encoder_weights`` as (hub name, local file): one of them, or neither."""
    if encoder_weights is None:
        return None, None
    if not looks_like_path(encoder_weights):
        return str(encoder_weights), None
    weights_file = Path(encoder_weights)
    if not weights_file.is_file():
        raise FileNotFoundError(f"encoder_weights: no such file {str(weights_file)!r}")
    return None, weights_file


def _deeplab_v2(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.deeplabv2 import ASPP_V2_RATES, DeepLabV2

    if options["decoder_channels"] != 256 or options["fc_channels"] != 1024:
        raise ValueError(
            f"decoder_channels and fc_channels do not apply to {name}: DeepLab v2's head is four "
            f"3x3 classifiers (set atrous_rates to change it)"
        )
    rates, freeze_bn = options["atrous_rates"], options["freeze_bn"]
    return DeepLabV2(
        name[len(_V2_PREFIX) :],
        num_classes=options["num_classes"],
        output_stride=options["output_stride"],
        encoder_weights=hub_name,
        encoder_depth=options["encoder_depth"],
        atrous_rates=ASPP_V2_RATES if rates is None else rates,
        freeze_bn=True if freeze_bn is None else freeze_bn,
        pad_mode=options["pad_mode"],
    )


def _vgg(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.vgg import ASPP_RATES, LARGEFOV_RATES, VGG16DeepLab

    if options["output_stride"] != 8:
        raise ValueError(f"output_stride: {name} has output stride 8, got {options['output_stride']}")
    if options["encoder_depth"] != 5 or options["decoder_channels"] != 256:
        raise ValueError(f"encoder_depth and decoder_channels apply to smp encoders, not to {name}")
    if hub_name not in (None, "imagenet"):
        raise ValueError(f"encoder_weights: {name} knows the hub name 'imagenet' only, got {hub_name!r}")
    if options["freeze_bn"]:
        raise ValueError(f"freeze_bn: {name} has no batch norm to freeze")
    default_rates = LARGEFOV_RATES if name == "vgg16_largefov" else ASPP_RATES
    vgg = VGG16DeepLab(
        num_classes=options["num_classes"],
        rates=default_rates if options["atrous_rates"] is None else options["atrous_rates"],
        fc_channels=options["fc_channels"],
        dropout=options["dropout"],
        pad_mode=options["pad_mode"],
    )
    if hub_name is not None:
        vgg.load_imagenet_backbone()
    return vgg


def _smp(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.smp_deeplab import SmpDeepLab

    if options["fc_channels"] != 1024:
        raise ValueError(f"fc_channels applies to the VGG16 heads, not to {name}")
    model = SmpDeepLab(
        name[len(_SMP_PREFIX) :],
        num_classes=options["num_classes"],
        output_stride=options["output_stride"],
        encoder_depth=options["encoder_depth"],
        encoder_weights=hub_name,
        decoder_channels=options["decoder_channels"],
        atrous_rates=options["atrous_rates"],
        dropout=options["dropout"],
        pad_mode=options["pad_mode"],
    )
    if options["freeze_bn"]:
        model.freeze_backbone_bn()
    return model


def build_deeplab(
    name: str,
    num_classes: int = 21,
    output_stride: int = 8,
    encoder_weights: str | os.PathLike[str] | None = None,
    dropout: float = 0.5,
    *,
    encoder_depth: int = 5,
    decoder_channels: int = 256,
    atrous_rates: Sequence[int] | None = None,
    fc_channels: int = 1024,
    freeze_bn: bool | None = None,
    pad_mode: PadMode = "constant",
) -> DeepLab:
    """Build a DeepLab backbone by name.

    Args:
        name: ``"deeplabv2_<smp encoder>"`` (``"deeplabv2_resnet101"``: the paper's ResNet-101
            network), ``"deeplabv3_<smp encoder>"`` (e.g. ``"deeplabv3_resnet101"``),
            ``"vgg16_largefov"`` or ``"vgg16_aspp"`` (the paper's VGG16 network).
        num_classes: K (21 for VOC).
        output_stride: 8, or 16 for smp encoders (VGG16 DeepLab is always 8).
        encoder_weights: ``None`` (random init), a hub name (``"imagenet"``: smp's weights for smp
            encoders, torchvision's ImageNet VGG16 for the VGG trunk; both download), or a local
            file (``.pth``/``.pt``/``.bin``/``.ckpt``/``.safetensors``) holding the state dict of the
            backbone or of the whole network, see :func:`~sal_lightning.nn.load_weights`.
        dropout: dropout in the head (ASPP projection for DeepLabV3, after fc6/fc7 for VGG); DeepLab
            v2's head has no dropout layer, so it does not apply to ``deeplabv2_*``.
        encoder_depth: smp encoder stages (3..5); smp encoders only.
        decoder_channels: DeepLabV3's ASPP width; ``deeplabv3_*`` only.
        atrous_rates: ASPP rates; DeepLabV3 default (12, 24, 36) at stride 8 / (6, 12, 18) at 16,
            DeepLab v2 and VGG ASPP (6, 12, 18, 24), VGG LargeFOV (12,).
        fc_channels: fc6/fc7 width of the VGG head (1024); VGG only.
        freeze_bn: backbone batch norm in eval mode with frozen parameters, also in ``train()``;
            ``None``: the network's own convention (on for DeepLab v2, off for DeepLabV3; VGG16
            has no batch norm).
        pad_mode: how inputs are padded to the encoder's multiple, see :class:`DeepLab`.
    """
    hub_name, weights_file = _split_weights(encoder_weights)
    options = {
        "num_classes": num_classes, "output_stride": output_stride, "dropout": dropout,
        "encoder_depth": encoder_depth, "decoder_channels": decoder_channels, "atrous_rates": atrous_rates,
        "fc_channels": fc_channels, "freeze_bn": freeze_bn, "pad_mode": pad_mode,
    }  # fmt: skip
    if name.startswith(_V2_PREFIX) and len(name) > len(_V2_PREFIX):
        model = _deeplab_v2(name, hub_name, options)
    elif name in VGG_BACKBONES:
        model = _vgg(name, hub_name, options)
    elif name.startswith(_SMP_PREFIX) and len(name) > len(_SMP_PREFIX):
        model = _smp(name, hub_name, options)
    else:
        raise ValueError(
            f"name: expected 'deeplabv2_<smp encoder>' (e.g. 'deeplabv2_resnet101', the paper's), "
            f"'vgg16_aspp', 'vgg16_largefov' or 'deeplabv3_<smp encoder>', got {name!r}"
        )
    if weights_file is not None:
        load_weights(model, weights_file)
    return model
