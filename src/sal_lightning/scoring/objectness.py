"""Default mask objectness ``F(B_i)`` for Eq. 3: does the mask boundary follow strong image edges?

The paper uses BING objectness, which needs trained models that no package ships. This default is
cheap, pure PyTorch and batched. For image ``i`` with colour gradient magnitude ``g``
(Sobel, per channel, combined as the Euclidean norm over channels):

- the *boundary band* of the mask is the set of pixels whose 3x3 neighbourhood holds both
  foreground and background (a 2-pixel-wide band straddling the boundary; the image border does not
  count as boundary);
- ``r = mean(g on the band) / mean(g over the image)``: ``r > 1`` when the boundary runs along
  stronger edges than the image's average, ``r < 1`` when it cuts through flat regions;
- ``F = max(r / (1 + r), eps)``: 0.5 for a boundary as edgy as the average image pixel, towards 1 for
  boundaries on strong edges, towards 0 for boundaries in flat regions.

Without a boundary (empty or full mask) ``F = eps``; on a flat image (no gradient anywhere)
``r = 1`` and ``F = 0.5``, no evidence either way. ``r`` is invariant to the image's intensity scale
and offset, so ``uint8`` images, ``[0, 1]`` floats and mean/std-normalised tensors give (nearly) the
same score. With ``b = 0.1`` in Eq. 3 the factor ``F^b`` stays within ``[eps^0.1, 1]``: a small
correction, as in the paper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sal_lightning._checks import check_tensor
from sal_lightning._lazy import lazy_module
from sal_lightning.scoring.metrics import foreground

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
    F = lazy_module("torch.nn.functional")
else:
    import torch
    import torch.nn.functional as F
    from torch import Tensor


def gradient_magnitude(image: Tensor) -> Tensor:
    """Colour Sobel gradient magnitude.

    Args:
        image: ``[B, 3, H, W]`` float or uint8 (any scale).

    Returns:
        ``[B, H, W]`` float32, ``sqrt(sum_c (gx_c^2 + gy_c^2))`` with replicate padding.
    """
    x = image.to(torch.float32)
    channels = x.shape[1]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    kernels = torch.stack([kx, kx.t()])[:, None].repeat(channels, 1, 1, 1)  # [2C, 1, 3, 3]
    grads = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels, groups=channels)
    return grads.square().sum(dim=1).sqrt()


def boundary_band(mask: Tensor) -> Tensor:
    """Pixels whose 3x3 neighbourhood (inside the image) holds both foreground and background.

    Args:
        mask: ``[B, H, W]`` bool.

    Returns:
        ``[B, H, W]`` bool.
    """
    m = mask[:, None].to(torch.float32)
    dilated = F.max_pool2d(m, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-m, 3, stride=1, padding=1)
    return (dilated != eroded)[:, 0]


def mask_objectness(image: Tensor, mask: Tensor, eps: float = 1e-3, ignore_index: int = 255) -> Tensor:
    """Edge-alignment objectness of masks, the default ``F(B_i)`` of Eq. 3 (see the module docstring).

    Args:
        image: ``[B, 3, H, W]`` float or uint8 images (any intensity scale).
        mask: ``[B, H, W]`` bool or int masks; foreground = labels ``> 0`` except ``ignore_index``.
        eps: floor of the score (for masks without a boundary).
        ignore_index: label of unlabelled pixels in ``mask`` (never foreground).

    Returns:
        ``[B]`` float32 scores in ``[eps, 1)``, a subset of ``(0, 1]``.
    """
    dims: dict[str, int] = {}
    check_tensor(image, "image", "B 3 H W", "any", dims=dims)
    check_tensor(mask, "mask", "B H W", "any", dims=dims)
    if image.is_complex() or image.dtype == torch.bool:
        raise ValueError(f"image: expected a float or uint8 tensor [B, 3, H, W], got {image.dtype}")
    if mask.is_floating_point():
        raise ValueError(f"mask: expected a bool or integer mask, got {mask.dtype}")
    if not 0 < eps < 1:
        raise ValueError(f"eps: expected a number in (0, 1), got {eps!r}")
    grad = gradient_magnitude(image).flatten(1)  # [B, HW]
    band = boundary_band(foreground(mask, ignore_index)).flatten(1).to(torch.float32)
    n_band = band.sum(dim=1)
    band_mean = (grad * band).sum(dim=1) / n_band.clamp_min(1)
    image_mean = grad.mean(dim=1)
    flat = image_mean <= 1e-12
    ratio = torch.where(flat, torch.ones_like(image_mean), band_mean / image_mean.clamp_min(1e-12))
    score = (ratio / (1 + ratio)).clamp_min(eps)
    return torch.where(n_band > 0, score, torch.full_like(score, eps))
