"""Weights files in the layout of kazuto1011/deeplab-pytorch, built by the tests, and an independent
forward pass of that network in plain torch ops.

The layout (read from that repository's ``libs/models/resnet.py``, ``deeplabv2.py`` and
``convert.py``): ``layer1.conv1.{conv,bn}`` (7x7 stem; the pool has no tensors),
``layer{2..5}.block{k}.{reduce,conv3x3,increase,shortcut}.{conv,bn}`` (``shortcut`` in block 1
only), batch norm tensors ``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``; the COCO initialisation adds the 91-class 1x1 ``fc`` of its "DeepLab v1"
container, the trained DeepLab v2 files hold ``aspp.c0..c3`` under ``base.`` (the MSC wrapper).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F

BLOCKS = (3, 4, 23, 3)
WIDTHS = (256, 512, 1024, 2048)
#: (stride, dilation) of layer2..layer5 at output stride 8, the DeepLab v2 setting
STRIDES = ((1, 1), (2, 1), (1, 2), (1, 4))
CAFFE_MEAN_BGR = (104.008, 116.669, 122.675)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _units() -> list[tuple[str, int, int, int, int, int]]:
    """(name, in, out, kernel, stride, dilation) of every convolution, in forward order."""
    units = [("layer1.conv1", 3, 64, 7, 2, 1)]
    cin = 64
    for layer, (blocks, width, (stride, dilation)) in enumerate(zip(BLOCKS, WIDTHS, STRIDES, strict=True)):
        mid = width // 4
        for b in range(1, blocks + 1):
            name = f"layer{layer + 2}.block{b}"
            s = stride if b == 1 else 1
            units += [
                (f"{name}.reduce", cin, mid, 1, s, 1),
                (f"{name}.conv3x3", mid, mid, 3, 1, dilation),
                (f"{name}.increase", mid, width, 1, 1, 1),
            ]
            if b == 1:
                units.append((f"{name}.shortcut", cin, width, 1, s, 1))
            cin = width
    return units


def _conv_bn(
    state: dict[str, torch.Tensor], name: str, x: torch.Tensor, stride: int, dilation: int, calibrate: bool
) -> torch.Tensor:
    weight = state[f"{name}.conv.weight"].to(x.dtype)
    padding = dilation * (weight.shape[-1] // 2)
    y = F.conv2d(x, weight, None, stride, padding, dilation)
    if calibrate:  # "sensible" statistics: those of this very input, so activations stay O(1)
        state[f"{name}.bn.running_mean"] = y.mean((0, 2, 3))
        state[f"{name}.bn.running_var"] = y.var((0, 2, 3), unbiased=False) + 0.1
    mean, var, gamma, beta = (
        state[f"{name}.bn.{k}"].to(x.dtype) for k in ("running_mean", "running_var", "weight", "bias")
    )
    return F.batch_norm(y, mean, var, gamma, beta, training=False, eps=1e-5)


def to_caffe_space(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised RGB -> BGR in 0..255 minus the Caffe mean, channel by channel."""
    out = torch.empty_like(x)
    for bgr, rgb in enumerate((2, 1, 0)):
        pixel = x[:, rgb] * IMAGENET_STD[rgb] + IMAGENET_MEAN[rgb]
        out[:, bgr] = pixel * 255.0 - CAFFE_MEAN_BGR[bgr]
    return out


def reference_features(
    state: dict[str, torch.Tensor],
    x: torch.Tensor,
    calibrate: bool = False,
    space: Callable[[torch.Tensor], torch.Tensor] = to_caffe_space,
) -> torch.Tensor:
    """DeepLab v2's Caffe ResNet-101 on ``x`` (ImageNet-normalised RGB) from ``state`` (unprefixed
    layout keys), written with F.conv2d / F.batch_norm / F.max_pool2d: ``[B, 2048, h, w]``, in
    ``x``'s dtype (float64 makes the comparison exact up to the order of the additions).
    ``calibrate`` first sets each batch norm's statistics to those of its input; ``space`` converts
    the input (default: :func:`to_caffe_space`)."""
    with torch.no_grad():
        h = space(x)
        h = F.relu(_conv_bn(state, "layer1.conv1", h, 2, 1, calibrate))
        h = F.max_pool2d(h, 3, 2, 1, ceil_mode=True)
        for layer, (blocks, (stride, dilation)) in enumerate(zip(BLOCKS, STRIDES, strict=True)):
            for b in range(1, blocks + 1):
                name, s = f"layer{layer + 2}.block{b}", stride if b == 1 else 1
                out = F.relu(_conv_bn(state, f"{name}.reduce", h, s, 1, calibrate))
                out = F.relu(_conv_bn(state, f"{name}.conv3x3", out, 1, dilation, calibrate))
                out = _conv_bn(state, f"{name}.increase", out, 1, 1, calibrate)
                shortcut = _conv_bn(state, f"{name}.shortcut", h, s, 1, calibrate) if b == 1 else h
                h = F.relu(out + shortcut)
    return h


def caffe_state_dict(seed: int = 0, fc_classes: int | None = 91) -> OrderedDict[str, torch.Tensor]:
    """A random trunk in the layout (the COCO initialisation's keys; its 91-class ``fc`` unless
    ``fc_classes`` is None). Statistics start at 0 / 1; see :func:`calibrated_state_dict`."""
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, cin, cout, kernel, _, _ in _units():
        fan_in = cin * kernel * kernel
        state[f"{name}.conv.weight"] = (
            torch.randn(cout, cin, kernel, kernel, generator=generator) * (2 / fan_in) ** 0.5
        )
        state[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=generator)
        state[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=generator)
        state[f"{name}.bn.running_mean"] = torch.zeros(cout)
        state[f"{name}.bn.running_var"] = torch.ones(cout)
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    if fc_classes is not None:
        state["fc.weight"] = 0.01 * torch.randn(fc_classes, 2048, 1, 1, generator=generator)
        state["fc.bias"] = torch.zeros(fc_classes)
    return state


def calibrated_state_dict(
    seed: int = 0, fc_classes: int | None = 91, size: int = 65
) -> OrderedDict[str, torch.Tensor]:
    """:func:`caffe_state_dict` with batch-norm statistics set from a random batch of ``size``
    pixels, so that features stay of order one (as those of real weights do)."""
    state = caffe_state_dict(seed, fc_classes)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    reference_features(state, x, calibrate=True)
    return state


def with_aspp(
    state: dict[str, torch.Tensor], num_classes: int, prefix: str = "base."
) -> OrderedDict[str, torch.Tensor]:
    """A trained DeepLab v2 file: the trunk and ``aspp.c0..c3`` (no fc), under ``prefix``."""
    generator = torch.Generator().manual_seed(7)
    out: OrderedDict[str, torch.Tensor] = OrderedDict(
        (prefix + k, v) for k, v in state.items() if not k.startswith("fc.")
    )
    for k in range(4):
        out[f"{prefix}aspp.c{k}.weight"] = 0.01 * torch.randn(num_classes, 2048, 3, 3, generator=generator)
        out[f"{prefix}aspp.c{k}.bias"] = 0.1 * torch.randn(num_classes, generator=generator)
    return out
