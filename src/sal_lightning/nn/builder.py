"""``build_deeplab(name, ...)``: every DeepLab backbone of the library by name."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sal_lightning.nn.deeplab import DeepLab, PadMode
from sal_lightning.nn.hub import (
    CAFFE_BACKBONE,
    SMP_PREFIX,
    V2_PREFIX,
    VGG_BACKBONES,
    fetch,
    looks_like_url,
    named_weights,
    url_weights,
)
from sal_lightning.nn.input_space import IMAGENET_MEAN, IMAGENET_STD
from sal_lightning.nn.weights import load_weights, looks_like_path

BACKBONES_HELP = (
    "'deeplabv2_caffe_resnet101' (DeepLab v2 on the Caffe ResNet-101, the paper's), "
    "'deeplabv2_<smp encoder>' (e.g. 'deeplabv2_resnet101'), 'vgg16_aspp', 'vgg16_largefov' or "
    "'deeplabv3_<smp encoder>'"
)


def resolve_weights(
    name: str, encoder_weights: str | os.PathLike[str] | None, progress: bool = True
) -> tuple[str | None, Path | None]:
    """``encoder_weights`` of the network ``name`` as (a name its encoder library fetches itself,
    a local file): one of them, or neither. Hub names and URLs become their cache file
    (:mod:`sal_lightning.nn.hub`: fetched once, or a one-line error offline)."""
    if encoder_weights is None:
        return None, None
    what = f"encoder_weights {str(encoder_weights)!r}"
    if looks_like_url(encoder_weights):
        return None, fetch(url_weights(str(encoder_weights)), what, progress)
    if not looks_like_path(encoder_weights):
        source = named_weights(name, str(encoder_weights))
        return (str(encoder_weights), None) if source is None else (None, fetch(source, what, progress))
    weights_file = Path(encoder_weights)
    if not weights_file.is_file():
        raise FileNotFoundError(f"encoder_weights: no such file {str(weights_file)!r}")
    return None, weights_file


def _freeze_rule(name: str, freeze_bn: bool | None, has_weights: bool) -> bool:
    """DeepLab v2's batch norm: frozen when weights are loaded (``None``), as asked otherwise."""
    if freeze_bn is None:
        return has_weights
    if freeze_bn and not has_weights:
        warnings.warn(
            f"freeze_bn: {name} loads no weights, so its frozen batch norm keeps the initial statistics "
            f"(mean 0, variance 1) and a deep ResNet's activations grow block after block; leave "
            f"freeze_bn unset (frozen only with encoder_weights) or give encoder_weights",
            stacklevel=3,
        )
    return freeze_bn


def _check_v2_options(name: str, options: dict[str, Any]) -> None:
    if options["decoder_channels"] != 256 or options["fc_channels"] != 1024:
        raise ValueError(
            f"decoder_channels and fc_channels do not apply to {name}: DeepLab v2's head is four "
            f"3x3 classifiers (set atrous_rates to change it)"
        )


def _deeplab_v2(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.deeplabv2 import ASPP_V2_RATES, CaffeDeepLabV2, DeepLabV2

    _check_v2_options(name, options)
    rates = ASPP_V2_RATES if options["atrous_rates"] is None else options["atrous_rates"]
    freeze_bn = _freeze_rule(name, options["freeze_bn"], options["has_weights"])
    if name == CAFFE_BACKBONE:
        if options["encoder_depth"] != 5:
            raise ValueError(f"encoder_depth applies to smp encoders, not to {name}")
        return CaffeDeepLabV2(
            num_classes=options["num_classes"],
            output_stride=options["output_stride"],
            atrous_rates=rates,
            freeze_bn=freeze_bn,
            pad_mode=options["pad_mode"],
        )
    return DeepLabV2(
        name[len(V2_PREFIX) :],
        num_classes=options["num_classes"],
        output_stride=options["output_stride"],
        encoder_weights=hub_name,
        encoder_depth=options["encoder_depth"],
        atrous_rates=rates,
        freeze_bn=freeze_bn,
        pad_mode=options["pad_mode"],
    )


def _vgg(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.vgg import ASPP_RATES, LARGEFOV_RATES, VGG16DeepLab

    if options["output_stride"] != 8:
        raise ValueError(f"output_stride: {name} has output stride 8, got {options['output_stride']}")
    if options["encoder_depth"] != 5 or options["decoder_channels"] != 256:
        raise ValueError(f"encoder_depth and decoder_channels apply to smp encoders, not to {name}")
    if options["freeze_bn"]:
        raise ValueError(f"freeze_bn: {name} has no batch norm to freeze")
    default_rates = LARGEFOV_RATES if name == "vgg16_largefov" else ASPP_RATES
    return VGG16DeepLab(
        num_classes=options["num_classes"],
        rates=default_rates if options["atrous_rates"] is None else options["atrous_rates"],
        fc_channels=options["fc_channels"],
        dropout=options["dropout"],
        pad_mode=options["pad_mode"],
    )


def _smp(name: str, hub_name: str | None, options: dict[str, Any]) -> DeepLab:
    from sal_lightning.nn.smp_deeplab import SmpDeepLab

    if options["fc_channels"] != 1024:
        raise ValueError(f"fc_channels applies to the VGG16 heads, not to {name}")
    model = SmpDeepLab(
        name[len(SMP_PREFIX) :],
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
    input_space: str | None = None,
    pixel_mean: Sequence[float] = IMAGENET_MEAN,
    pixel_std: Sequence[float] = IMAGENET_STD,
) -> DeepLab:
    """Build a DeepLab backbone by name.

    Args:
        name: ``"deeplabv2_caffe_resnet101"`` (the paper's ResNet-101 network: DeepLab v2 on the
            DeepLab authors' Caffe ResNet-101), ``"deeplabv2_<smp encoder>"`` (``"deeplabv2_resnet101"``:
            the same head on torchvision's ResNet-101), ``"deeplabv3_<smp encoder>"`` (e.g.
            ``"deeplabv3_resnet101"``), ``"vgg16_largefov"`` or ``"vgg16_aspp"`` (the paper's VGG16
            network).
        num_classes: K (21 for VOC).
        output_stride: 8, or 16 for smp encoders (VGG16 DeepLab is always 8).
        encoder_weights: ``None`` (random init), a hub name (``"imagenet"``: smp's weights for smp
            encoders, torchvision's ImageNet VGG16 for the VGG trunk; ``"coco"``: the DeepLab authors'
            COCO initialisation of the Caffe trunk), a URL, or a local file
            (``.pth``/``.pt``/``.bin``/``.ckpt``/``.safetensors``) holding the state dict of the
            backbone or of the whole network, see :func:`~sal_lightning.nn.load_weights`. Hub names
            and URLs are read from the torch hub cache, downloaded once (:mod:`sal_lightning.nn.hub`).
        dropout: dropout in the head (ASPP projection for DeepLabV3, after fc6/fc7 for VGG); DeepLab
            v2's head has no dropout layer, so it does not apply to ``deeplabv2_*``.
        encoder_depth: smp encoder stages (3..5); smp encoders only.
        decoder_channels: DeepLabV3's ASPP width; ``deeplabv3_*`` only.
        atrous_rates: ASPP rates; DeepLabV3 default (12, 24, 36) at stride 8 / (6, 12, 18) at 16,
            DeepLab v2 and VGG ASPP (6, 12, 18, 24), VGG LargeFOV (12,).
        fc_channels: fc6/fc7 width of the VGG head (1024); VGG only.
        freeze_bn: backbone batch norm in eval mode with frozen parameters, also in ``train()``;
            ``None``: the network's own convention: DeepLab v2 freezes it when ``encoder_weights`` is
            given (the weights' statistics are kept) and trains it without weights (frozen, a random
            ResNet's batch norm is the identity and its activations overflow); DeepLabV3 trains it;
            VGG16 has none.
        pad_mode: how inputs are padded to the encoder's multiple, see :class:`DeepLab`.
        input_space: the pixel space the backbone is fed (``"rgb_imagenet"`` or ``"bgr_caffe"``,
            :mod:`sal_lightning.nn.input_space`); ``None``: the one its weights expect (Caffe's for
            ``deeplabv2_caffe_resnet101``, ImageNet RGB for the others).
        pixel_mean, pixel_std: the normalisation of the batches the network is given (RGB, 0..1).
    """
    builders = {"v2": _deeplab_v2, "vgg": _vgg, "smp": _smp}
    build = builders[_family(name)]
    hub_name, weights_file = resolve_weights(name, encoder_weights)
    options = {
        "num_classes": num_classes,
        "output_stride": output_stride,
        "dropout": dropout,
        "encoder_depth": encoder_depth,
        "decoder_channels": decoder_channels,
        "atrous_rates": atrous_rates,
        "fc_channels": fc_channels,
        "freeze_bn": freeze_bn,
        "pad_mode": pad_mode,
        "has_weights": encoder_weights is not None,
    }
    model = build(name, hub_name, options)
    model.set_input_space(input_space, pixel_mean, pixel_std)
    if weights_file is not None:
        load_weights(model, weights_file)
    return model


def _family(name: str) -> str:
    """``"v2"``, ``"vgg"`` or ``"smp"``: which builder makes the network ``name``."""
    if name.startswith(V2_PREFIX) and len(name) > len(V2_PREFIX):
        return "v2"
    if name in VGG_BACKBONES:
        return "vgg"
    if name.startswith(SMP_PREFIX) and len(name) > len(SMP_PREFIX):
        return "smp"
    raise ValueError(f"name: expected {BACKBONES_HELP}, got {name!r}")
