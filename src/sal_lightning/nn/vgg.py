"""DeepLab on VGG16: the LargeFOV and ASPP variants, output stride 8.

segmentation-models-pytorch's VGG encoder refuses dilation, so the trunk is built here, following
DeepLab (v1 LargeFOV, v2 ASPP) and the SAL-Net authors' release:

- conv1..conv4 as VGG16 (3x3 convolutions + ReLU); pool1..pool3 are 3x3 max pools with stride 2 and
  padding 1 (so a side of ``n`` becomes ``ceil(n / 2)``), pool4 and pool5 3x3 with stride 1;
- conv5 with dilation 2; pool5a, a 3x3 average pool with stride 1 (padding excluded from the mean);
- the head: one branch per rate of ``fc6`` (3x3, dilation = rate, 1024 channels), ReLU, dropout,
  ``fc7`` (1x1, 1024), ReLU, dropout, ``fc8`` (1x1, ``num_classes``); the branches' logits are summed.
  LargeFOV is a single branch at rate 12, ASPP four branches at rates 6, 12, 18, 24.

The trunk's module indices are torchvision's ``vgg16().features`` indices (convolutions at 0, 2, 5,
7, 10, 12, 14, 17, 19, 21, 24, 26, 28), so torchvision's ImageNet VGG16 weights load into it
unchanged. The features of the classification branch are pool5a's output: ``[B, 512, h, w]``,
``h = ceil(H / 8)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from sal_lightning.nn.deeplab import DeepLab

#: (channels, convolutions) of VGG16's five stages
_VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
LARGEFOV_RATES: tuple[int, ...] = (12,)
ASPP_RATES: tuple[int, ...] = (6, 12, 18, 24)


def vgg16_trunk() -> nn.Sequential:
    """VGG16's conv1..conv5 in DeepLab form (output stride 8), then pool5a.

    ``[B, 3, H, W] -> [B, 512, ceil(H/8), ceil(W/8)]``. Indices match torchvision's
    ``vgg16().features``; pool5a is appended at index 31.
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for stage, (channels, convs) in enumerate(_VGG16_STAGES, start=1):
        dilation = 2 if stage == 5 else 1
        for _ in range(convs):
            layers += [
                nn.Conv2d(in_channels, channels, 3, padding=dilation, dilation=dilation),
                nn.ReLU(inplace=True),
            ]
            in_channels = channels
        layers.append(nn.MaxPool2d(3, stride=2 if stage <= 3 else 1, padding=1))
    layers.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
    trunk = nn.Sequential(*layers)
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)  # type: ignore[arg-type]
    return trunk


def dilated_fc_branch(
    in_channels: int, num_classes: int, rate: int, fc_channels: int = 1024, dropout: float = 0.5
) -> nn.Sequential:
    """One DeepLab-VGG head branch: fc6 (3x3, dilation ``rate``), fc7 (1x1), fc8 (1x1).

    ``[B, in_channels, h, w] -> [B, num_classes, h, w]``. fc6/fc7 are He-initialised, fc8 from
    N(0, 0.01^2) as in DeepLab; biases start at zero.
    """
    fc6 = nn.Conv2d(in_channels, fc_channels, 3, padding=rate, dilation=rate)
    fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
    fc8 = nn.Conv2d(fc_channels, num_classes, 1)
    nn.init.kaiming_normal_(fc6.weight, nonlinearity="relu")
    nn.init.kaiming_normal_(fc7.weight, nonlinearity="relu")
    nn.init.normal_(fc8.weight, std=0.01)
    for conv in (fc6, fc7, fc8):
        nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
    branch = nn.Sequential(
        OrderedDict(
            fc6=fc6,
            relu6=nn.ReLU(inplace=True),
            drop6=nn.Dropout(dropout),
            fc7=fc7,
            relu7=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout),
            fc8=fc8,
        )
    )
    return branch


class VGG16DeepLab(DeepLab):
    """DeepLab-LargeFOV (``rates=(12,)``) or DeepLab-ASPP (``rates=(6, 12, 18, 24)``) on VGG16.

    Output stride 8 with no padding needed: every side ``n`` gives ``ceil(n / 8)`` feature cells.
    ``backbone_parameters()`` are conv1..conv5 (the ImageNet-pretrainable part); the head (fc6, fc7,
    fc8 of every branch) is new, as in the authors' release, which restores only the conv layers.

    Args:
        num_classes: K, output channels.
        rates: one head branch per dilation rate; logits are summed over branches.
        fc_channels: width of fc6/fc7 (1024 in DeepLab).
        dropout: dropout after fc6 and fc7.
        pad_mode: unused padding mode kept for the shared interface (VGG needs no padding).
    """

    def __init__(
        self,
        num_classes: int = 21,
        rates: Sequence[int] = ASPP_RATES,
        fc_channels: int = 1024,
        dropout: float = 0.5,
        pad_mode: str = "constant",
    ) -> None:
        rates = tuple(int(r) for r in rates)
        if not rates or any(r < 1 for r in rates):
            raise ValueError(f"rates: expected one or more dilation rates >= 1, got {rates}")
        if fc_channels < 1:
            raise ValueError(f"fc_channels: expected a positive width, got {fc_channels}")
        super().__init__(
            num_classes=num_classes,
            output_stride=8,
            feature_channels=512,
            pad_multiple=1,
            pad_mode=pad_mode,
        )
        self.rates = rates
        self.features = vgg16_trunk()
        self.branches = nn.ModuleList(
            dilated_fc_branch(512, num_classes, rate, fc_channels, dropout=dropout) for rate in rates
        )

    def extract_features(self, x: Tensor) -> Tensor:
        """``x: [B, 3, H, W] -> [B, 512, ceil(H/8), ceil(W/8)]`` (pool5a)."""
        return self.features(x)

    def classify(self, features: Tensor) -> Tensor:
        """``features: [B, 512, h, w] -> [B, K, h, w]``, the sum over the rate branches."""
        out = self.branches[0](features)
        for branch in self.branches[1:]:
            out = out + branch(features)
        return out

    def backbone_module(self) -> nn.Module:
        return self.features
