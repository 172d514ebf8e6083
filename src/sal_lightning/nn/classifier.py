"""Hybrid dilated classification branch (SAL-Net Eq. 10) that produces the class scores ``d_s``.

Paper form (``combine="sum"``): four parallel 3x3 convolutions with dilation rates 1, 3, 6, 9 map the
shared features to class maps; each is global-average-pooled to class scores ``d_k`` and
``d_s = d_1 + d_2 + d_3 + d_4``.

Released-code form (``combine="released"``, the authors' TensorFlow release): per rate a 3x3 dilated
conv to 256 channels, ReLU, dropout 0.5 and a 3x3 conv to the classes; the maps are combined as
``b_1 + (b_2 + b_3 + b_4) / 3``, global-average-pooled and passed through a ``C -> C`` linear layer.

In both forms the class activation maps ``cams`` satisfy ``cams.mean((2, 3)) == logits``: global
average pooling commutes with the (affine) combination and the final linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor

Combine = Literal["sum", "released"]


@dataclass(frozen=True)
class ClassifierOutput:
    """What :meth:`HybridDilatedClassifier.forward_maps` returns.

    Attributes:
        logits: ``[B, C]`` class scores ``d_s``.
        branch_logits: ``[B, R, C]`` per-rate class scores ``d_k`` (global average of each branch's
            maps, before combination and, for ``"released"``, before the linear layer).
        cams: ``[B, C, h, w]`` class activation maps; ``cams.mean((2, 3)) == logits``.
    """

    logits: Tensor
    branch_logits: Tensor
    cams: Tensor


def _branch(
    in_channels: int, num_foreground: int, rate: int, hidden_channels: int | None, dropout: float
) -> nn.Sequential:
    if hidden_channels is None:
        return nn.Sequential(nn.Conv2d(in_channels, num_foreground, 3, padding=rate, dilation=rate))
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, 3, padding=rate, dilation=rate),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
        nn.Conv2d(hidden_channels, num_foreground, 3, padding=1),
    )


class HybridDilatedClassifier(nn.Module):
    """Classification branch on shared backbone features (Eq. 10).

    Args:
        in_channels: channels of the backbone features.
        num_foreground: ``C`` foreground classes, no background (20 for PASCAL VOC, 80 for COCO).
        rates: dilation rates of the parallel branches.
        combine: ``"sum"`` (the paper, Eq. 10) or ``"released"`` (the authors' code, see the module
            docstring; needs at least two rates).
        hidden_channels: hidden width of each branch (3x3 dilated conv -> ReLU -> dropout -> 3x3 conv).
            ``None``: a single 3x3 dilated conv per branch for ``"sum"``, 256 for ``"released"``.
        dropout: dropout probability after the hidden ReLU (channel-wise). ``None``: 0 for ``"sum"``,
            0.5 for ``"released"``. Unused without hidden channels.

    Shapes: ``features: [B, in_channels, h, w]`` float -> ``logits: [B, C]``.
    """

    def __init__(
        self,
        in_channels: int,
        num_foreground: int = 20,
        rates: tuple[int, ...] = (1, 3, 6, 9),
        combine: Combine = "sum",
        hidden_channels: int | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        if combine not in ("sum", "released"):
            raise ValueError(f"combine: expected 'sum' or 'released', got {combine!r}")
        if not rates or any(int(r) < 1 for r in rates):
            raise ValueError(f"rates: expected a non-empty tuple of positive integers, got {rates!r}")
        if combine == "released" and len(rates) < 2:
            raise ValueError(f"rates: combine='released' needs at least two rates, got {rates!r}")
        if combine == "released" and hidden_channels is None:
            hidden_channels = 256
        if dropout is None:
            dropout = 0.5 if combine == "released" else 0.0
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.in_channels = int(in_channels)
        if num_foreground < 1:
            raise ValueError(f"num_foreground: expected at least one class, got {num_foreground}")
        self.num_foreground = int(num_foreground)
        self.rates = tuple(int(r) for r in rates)
        self.combine = combine
        self.branches = nn.ModuleList(
            _branch(in_channels, num_foreground, r, hidden_channels, dropout=dropout) for r in self.rates
        )
        self.fc = nn.Linear(num_foreground, num_foreground) if combine == "released" else None

    def forward_maps(self, features: Tensor) -> ClassifierOutput:
        """Class scores with their per-branch scores and class activation maps.

        Args:
            features: ``[B, in_channels, h, w]`` float backbone features.
        """
        check_tensor(features, "features", f"B {self.in_channels} h w", "float")
        maps = [branch(features) for branch in self.branches]  # R x [B, C, h, w]
        if self.fc is None:
            cams = maps[0]
            for m in maps[1:]:
                cams = cams + m
        else:
            rest = maps[1]
            for m in maps[2:]:
                rest = rest + m
            combined = maps[0] + rest / (len(maps) - 1)
            # the linear layer applied per position, so that GAP(cams) == fc(GAP(combined))
            cams = F.conv2d(combined, self.fc.weight[:, :, None, None], self.fc.bias)
        branch_logits = torch.stack([m.mean(dim=(2, 3)) for m in maps], dim=1)
        return ClassifierOutput(logits=cams.mean(dim=(2, 3)), branch_logits=branch_logits, cams=cams)

    def forward(self, features: Tensor) -> Tensor:
        """Class scores ``d_s``: ``[B, in_channels, h, w]`` float -> ``[B, C]``."""
        return self.forward_maps(features).logits
