"""The pixel space a trunk's weights expect, reached from the library's normalised RGB batches.

Batches always carry RGB images normalised as ``x = (rgb / 255 - mean) / std`` (the data
transforms' ``mean`` / ``std``, ImageNet's by default). Each trunk's weights were trained on one
input space:

- ``"rgb_imagenet"``: RGB in 0..1, ImageNet mean subtracted, divided by ImageNet std (torchvision,
  smp and timm weights);
- ``"bgr_caffe"``: BGR in 0..255 with the Caffe mean (B, G, R) = (104.008, 116.669, 122.675)
  subtracted, no division (the Caffe models of DeepLab and their PyTorch conversions).

:class:`InputSpace` turns a batch into the trunk's space with one fixed per-channel affine map and a
channel permutation, inside the network, so that data modules, CRF and visualisation keep one
convention. Its tensors are buffers that are not saved in state dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

Space = Literal["rgb_imagenet", "bgr_caffe"]
SPACES: tuple[str, ...] = ("rgb_imagenet", "bgr_caffe")

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel RGB mean (in 0..1) subtracted by the transforms; ``x = (rgb / 255 - mean) / std``."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation (in 0..1) the transforms divide by."""

CAFFE_BGR_MEAN: tuple[float, float, float] = (104.008, 116.669, 122.675)
"""The Caffe models' mean in 0..255, in B, G, R order (DeepLab's ``mean_value``)."""


def space_affine(
    space: str, pixel_mean: Sequence[float] = IMAGENET_MEAN, pixel_std: Sequence[float] = IMAGENET_STD
) -> tuple[list[int], list[float], list[float]]:
    """``(order, scale, shift)`` with ``y[c] = x[order[c]] * scale[c] + shift[c]`` mapping a batch
    normalised with ``pixel_mean`` / ``pixel_std`` (RGB, 0..1) into ``space``."""
    if space not in SPACES:
        raise ValueError(f"input_space: expected one of {SPACES}, got {space!r}")
    mean, std = [float(v) for v in pixel_mean], [float(v) for v in pixel_std]
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"pixel_mean, pixel_std: expected three values each, std > 0; got {mean}, {std}")
    if space == "rgb_imagenet":  # (rgb - m') / s' with rgb = x * s + m
        order = [0, 1, 2]
        scale = [std[c] / IMAGENET_STD[c] for c in order]
        shift = [(mean[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c] for c in order]
    else:  # 255 * rgb[2 - c] - caffe_mean[c]
        order = [2, 1, 0]
        scale = [255.0 * std[c] for c in order]
        shift = [255.0 * mean[c] - CAFFE_BGR_MEAN[k] for k, c in enumerate(order)]
    return order, scale, shift


class InputSpace(nn.Module):
    """``x: [B, 3, H, W]`` normalised RGB ``->`` the same images in ``space`` (identity when equal).

    Args:
        space: ``"rgb_imagenet"`` or ``"bgr_caffe"``, see the module docstring.
        pixel_mean, pixel_std: the normalisation of the incoming batches (RGB, 0..1).
    """

    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        space: str,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        order, scale, shift = space_affine(space, pixel_mean, pixel_std)
        self.space = space
        self.order = order
        self.identity = order == [0, 1, 2] and scale == [1.0] * 3 and shift == [0.0] * 3
        self.register_buffer("scale", torch.tensor(scale).view(3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.identity:
            return x
        if self.order != [0, 1, 2]:
            x = x[:, self.order]
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)

    def extra_repr(self) -> str:
        return f"space={self.space!r}, identity={self.identity}"
