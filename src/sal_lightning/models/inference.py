"""Inference helpers shared by the segmenter and its callbacks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sal_lightning.data.voc import IMAGENET_MEAN, IMAGENET_STD


def to_uint8_images(
    image: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Undo the input normalisation ``x = (rgb / 255 - mean) / std``.

    Args:
        image: ``[B, 3, H, W]`` float, normalised.
        mean, std: the 3 per-channel values (in 0..1) the transforms used.

    Returns:
        ``uint8 [B, H, W, 3]`` C-contiguous RGB (the layout dense CRF and W&B expect).
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image: expected a tensor [B, 3, H, W], got {list(image.shape)}")
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    rgb = ((image.detach().float() * s + m) * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(rgb.permute(0, 2, 3, 1).cpu().numpy())
