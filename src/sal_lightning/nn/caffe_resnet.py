"""The MSRA / Caffe ResNet-101 of DeepLab v2, dilated to output stride 8.

This is the trunk the DeepLab authors trained in Caffe and the WSSS field retrains from (their
``init.caffemodel``, converted to PyTorch as ``deeplabv1_resnet101-coco.pth`` in the layout of
``kazuto1011/deeplab-pytorch``). It differs from torchvision's ResNet ("v1.5") in two places:

- a bottleneck strides in its first 1x1 convolution (``reduce``), not in its 3x3;
- the stem's 3x3 max pool pads 1 and rounds up (``ceil_mode``), so a 321 x 321 input gives
  161 -> 81 -> 41 cells.

Module names follow the converted files, so their state dicts load without renaming:
``layer1`` is the stem (``conv1.conv``, ``conv1.bn``, ``pool``), ``layer2`` .. ``layer5`` are conv2_x ..
conv5_x with blocks ``block1`` .. ``blockN``, each ``reduce`` (1x1, carries the stride), ``conv3x3``
(dilated), ``increase`` (1x1) and, in the first block of a layer, ``shortcut`` (1x1 projection); every
convolution has no bias and is followed by batch norm (eps 1e-5, Caffe's). DeepLab v2 removes the
strides of ``layer4`` and ``layer5`` and dilates their 3x3 convolutions by 2 and 4: output stride 8.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

#: blocks per layer of ResNet-101 (conv2_x .. conv5_x)
RESNET101_BLOCKS: tuple[int, int, int, int] = (3, 4, 23, 3)
#: Caffe's batch norm epsilon (the converted files keep it)
CAFFE_BN_EPS = 1e-5
_EXPANSION = 4


class ConvBN(nn.Module):
    """Convolution without bias, batch norm, optional ReLU: ``[B, C_in, H, W] -> [B, C_out, H', W']``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        relu: bool = True,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel // 2)
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=CAFFE_BN_EPS)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn(self.conv(x))
        return F.relu(out) if self.relu else out


class CaffeBottleneck(nn.Module):
    """MSRA bottleneck: ``relu(increase(conv3x3(reduce(x))) + shortcut(x))``, stride in ``reduce``."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dilation: int, project: bool
    ) -> None:
        super().__init__()
        mid = out_channels // _EXPANSION
        self.reduce = ConvBN(in_channels, mid, 1, stride=stride)
        self.conv3x3 = ConvBN(mid, mid, 3, dilation=dilation)
        self.increase = ConvBN(mid, out_channels, 1, relu=False)
        self.shortcut = ConvBN(in_channels, out_channels, 1, stride=stride, relu=False) if project else None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + identity)


class CaffeStem(nn.Module):
    """7x7 convolution (stride 2) + BN + ReLU, then a 3x3 max pool, stride 2, pad 1, ceil mode."""

    def __init__(self, out_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, out_channels, 7, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv1(x))


def _layer(blocks: int, in_channels: int, out_channels: int, stride: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            (
                f"block{k + 1}",
                CaffeBottleneck(
                    in_channels if k == 0 else out_channels,
                    out_channels,
                    stride=stride if k == 0 else 1,
                    dilation=dilation,
                    project=k == 0,
                ),
            )
            for k in range(blocks)
        )
    )


class CaffeResNet(nn.Module):
    """Dilated MSRA ResNet: ``x: [B, 3, H, W]`` (Caffe BGR, 0-255 minus the mean) ``->
    [B, 2048, ceil(H/s), ceil(W/s)]`` at output stride ``s`` = 8 (``layer4`` / ``layer5`` dilated 2 / 4)
    or 16 (``layer4`` strided, ``layer5`` dilated 2).

    Args:
        blocks: bottlenecks per layer (ResNet-101: 3, 4, 23, 3).
        output_stride: 8 (DeepLab v2) or 16.
    """

    def __init__(self, blocks: Sequence[int] = RESNET101_BLOCKS, output_stride: int = 8) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride: expected 8 (DeepLab v2) or 16, got {output_stride}")
        if len(blocks) != 4 or any(b < 1 for b in blocks):
            raise ValueError(f"blocks: expected four positive block counts, got {tuple(blocks)}")
        widths = (256, 512, 1024, 2048)
        strides, dilations = (
            ((1, 2, 1, 1), (1, 1, 2, 4)) if output_stride == 8 else ((1, 2, 2, 1), (1, 1, 1, 2))
        )
        self.output_stride = output_stride
        self.out_channels = widths[-1]
        self.layer1 = CaffeStem(64)
        in_channels = 64
        for k in range(4):
            setattr(
                self,
                f"layer{k + 2}",
                _layer(blocks[k], in_channels, widths[k], strides[k], dilation=dilations[k]),
            )
            in_channels = widths[k]

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer1(x)
        for k in range(2, 6):
            out = getattr(self, f"layer{k}")(out)
        return out
