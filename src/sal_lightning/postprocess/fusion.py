"""Multi-scale + flip test-time fusion of segmentation probabilities."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sal_lightning._checks import check_tensor

Fuse = Literal["mean", "max"]


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(H * scale), round(W * scale))``, halves rounded up, at least 1."""
    return max(1, math.floor(height * scale + 0.5)), max(1, math.floor(width * scale + 0.5))


def multiscale_flip_probs(
    forward: Callable[[Tensor], Tensor],
    image: Tensor,
    scales: Sequence[float] = (0.5, 0.75, 1.0),
    flip: bool = True,
    fuse: Fuse = "mean",
) -> Tensor:
    """Class probabilities fused over rescaled and mirrored copies of ``image``.

    For each scale the image is resized (bilinear) to :func:`scaled_size`; with ``flip`` the
    mirrored copy runs in the same ``forward`` call (batch ``2B``) and its output is mirrored back.
    Each view's logits are resized (bilinear) to ``H x W``, turned into probabilities by softmax over
    classes, and the views are fused:

    - ``"mean"`` (default): the mean of the probabilities;
    - ``"max"``: the per-class maximum over views, renormalised to sum to 1 at each pixel (the
      SAL-Net release fuses its three scales by max).

    Args:
        forward: ``[N, C, h, w] -> [N, K, h, w]`` logits at its input's resolution, e.g.
            ``lambda x: model(x).logits``. Gradients are the caller's business (use
            ``torch.no_grad()`` or ``inference_mode`` at test time).
        image: ``[B, C, H, W]`` float.
        scales: positive scale factors.
        flip: also run the left-right mirrored image.
        fuse: ``"mean"`` or ``"max"``.

    Returns:
        float32 ``[B, K, H, W]`` probabilities summing to 1 over K.
    """
    dims: dict[str, int] = {}
    check_tensor(image, "image", "B C H W", "float", dims=dims)
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"scales: expected one or more positive factors, got {tuple(scales)}")
    if fuse not in ("mean", "max"):
        raise ValueError(f"fuse: expected 'mean' or 'max', got {fuse!r}")
    batch, height, width = dims["B"], dims["H"], dims["W"]
    fused: Tensor | None = None
    views = 0
    for scale in scales:
        size = scaled_size(height, width, scale)
        x = (
            image
            if size == (height, width)
            else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        )
        logits = forward(torch.cat([x, x.flip(-1)]) if flip else x)
        check_tensor(
            logits,
            f"forward output at scale {scale}",
            f"{2 * batch if flip else batch} K {size[0]} {size[1]}",
        )
        outputs = [logits[:batch], logits[batch:].flip(-1)] if flip else [logits]
        for view in outputs:
            if size != (height, width):
                view = F.interpolate(view, size=(height, width), mode="bilinear", align_corners=False)
            probs = view.float().softmax(1)
            if fused is None:
                fused = probs
            elif fuse == "mean":
                fused = fused + probs
            else:
                fused = torch.maximum(fused, probs)
            views += 1
    assert fused is not None
    return fused / views if fuse == "mean" else fused / fused.sum(1, keepdim=True)
