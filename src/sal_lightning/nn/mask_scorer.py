"""The mask-quality regression network of SAL-Net's fine scoring (Sec. III-B2, Table I), pure PyTorch.

The network sees an image and one binary mask stacked as 4 input channels and regresses the mask's
quality. Table I of the paper, transcribed exactly (``Conv`` a 3x3 convolution, ``ResB`` the
residual block of He et al. [43], channels as input x output, sizes at a 256 x 256 input)::

    #  module    stride  channels   activation  output
    1  3x3 Conv  1       4 x 128    ReLU        128 x 256 x 256
    2  ResB      1       128 x 192  GDN         192 x 256 x 256
    3  3x3 Conv  2       192 x 192  ReLU        192 x 128 x 128
    4  ResB      1       192 x 192  GDN         192 x 128 x 128
    5  3x3 Conv  2       192 x 192  ReLU        192 x 64 x 64
    6  ResB      1       192 x 192  GDN         192 x 64 x 64
    7  3x3 Conv  2       192 x 192  ReLU        192 x 32 x 32
    8  fc        -       192 x 128  GDN         128
    9  fc        -       128 x 1    ReLU        1

Where the table is silent:

- **Residual block**: two 3x3 convolutions with a ReLU between them, added to the shortcut; the
  table's activation (GDN) follows the sum, in place of the block's final ReLU. Layer 2 changes
  the width (128 -> 192), so its shortcut is a 1x1 projection (He et al.'s option B); the others
  are identities. No batch norm (the table lists none; GDN normalises).
- **Layers 7 -> 8**: a 192 x 32 x 32 map feeds a 192-wide fully connected layer, so it is global
  average pooling (which also makes the network work at any input size).
- **GDN after layer 8** acts on the 128-vector as on a 1 x 1 map.
- **Output range**: layer 9's ReLU gives ``P >= 0``; the l2 loss (Eq. 6) is taken on that output,
  so gradients flow for every sample, and :meth:`MaskScorerNet.score` clips it to ``[0, 1]`` (the
  range of the AC targets) for scoring. Layer 9's bias starts at 0.5, the middle of that range,
  so no sample starts in the ReLU's dead zone.

The table costs about 1.2 * 10^11 FLOPs per 256 x 256 sample, which is fine on a GPU but slow on a
CPU. :data:`ARCHITECTURES` names the table (``"table1"``) and a lighter variant with the same nine
layers at smaller widths (``"light"``); ``docs/scoring.md`` gives both their cost and accuracy.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sal_lightning._checks import check_tensor
from sal_lightning.nn.gdn import GDN

Architecture = Literal["table1", "light"]

#: the named layer widths: ``(stem, body, hidden)`` = layer 1's output channels, layers 2-7's,
#: layer 8's. ``"table1"`` is the paper's; ``"light"`` is this library's CPU variant.
ARCHITECTURES: dict[str, tuple[int, int, int]] = {
    "table1": (128, 192, 128),
    "light": (16, 32, 32),
}


class ResidualBlock(nn.Module):
    """He et al.'s basic block without its last activation: ``shortcut(x) + conv(relu(conv(x)))``.

    The shortcut is a 1x1 projection when the width changes, else the identity.
    x: ``[B, Cin, H, W]`` float -> ``[B, Cout, H, W]``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut: nn.Module = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv2(F.relu(self.conv1(x)))


class MaskScorerNet(nn.Module):
    """Table I: nine layers from a 4-channel (image + mask) input to one quality score.

    Args:
        arch: ``"table1"`` (the paper's widths) or ``"light"``; see :data:`ARCHITECTURES`.
        in_channels: input channels (4: RGB and the mask).

    ``forward(x [B, in_channels, H, W]) -> [B]`` is layer 9's output (``>= 0``, the value the l2
    loss compares with the target); :meth:`score` takes an image and a mask and returns scores
    clipped to ``[0, 1]``. ``layers`` lists the nine layers in the table's order and
    ``activations`` their activations.
    """

    def __init__(self, arch: Architecture = "table1", in_channels: int = 4) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch: expected one of {sorted(ARCHITECTURES)}, got {arch!r}")
        stem, body, hidden = ARCHITECTURES[arch]
        self.arch = arch
        self.in_channels = int(in_channels)
        last = nn.Linear(hidden, 1)
        nn.init.constant_(last.bias, 0.5)  # the middle of the targets' range: no sample starts dead
        self.layers = nn.ModuleList(
            [
                nn.Conv2d(in_channels, stem, 3, stride=1, padding=1),  # 1
                ResidualBlock(stem, body),  # 2
                nn.Conv2d(body, body, 3, stride=2, padding=1),  # 3
                ResidualBlock(body, body),  # 4
                nn.Conv2d(body, body, 3, stride=2, padding=1),  # 5
                ResidualBlock(body, body),  # 6
                nn.Conv2d(body, body, 3, stride=2, padding=1),  # 7
                nn.Linear(body, hidden),  # 8
                last,  # 9
            ]
        )
        self.activations = nn.ModuleList(
            [
                nn.ReLU(),
                GDN(body),
                nn.ReLU(),
                GDN(body),
                nn.ReLU(),
                GDN(body),
                nn.ReLU(),
                GDN(hidden),
                nn.ReLU(),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", f"B {self.in_channels} H W", "float")
        for k in range(7):
            x = self.activations[k](self.layers[k](x))
        x = x.mean(dim=(2, 3))  # global average pooling between layers 7 and 8
        x = self.activations[7](self.layers[7](x)[:, :, None, None]).flatten(1)
        return self.activations[8](self.layers[8](x)).squeeze(1)

    @staticmethod
    def stack_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The 4-channel input: image ``[B, 3, H, W]`` float and mask ``[B, H, W]`` (nonzero =
        foreground) -> ``[B, 4, H, W]``."""
        dims: dict[str, int] = {}
        check_tensor(image, "image", "B 3 H W", "float", dims=dims)
        check_tensor(mask, "mask", "B H W", "any", dims=dims)
        return torch.cat([image, (mask > 0).to(image.dtype).unsqueeze(1)], dim=1)

    def score(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Quality ``P`` ``[B]`` in ``[0, 1]`` of ``mask [B, H, W]`` on ``image [B, 3, H, W]``."""
        return self(self.stack_input(image, mask)).clamp(0.0, 1.0)
