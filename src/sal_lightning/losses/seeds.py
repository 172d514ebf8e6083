"""Seeds for SEC/DSRG training from class activation maps and (optionally) saliency.

- Foreground: for each tagged class ``c``, the pixels where ``CAM_c > fg_ratio * max(CAM_c)``
  (``fg_ratio = 0.2`` as in DSRG); untagged classes give no seeds whatever their CAM.
- Background: the pixels whose saliency is below ``bg_saliency`` (DSRG: normalised saliency < 0.06),
  or, with no saliency, the ``bg_quantile`` fraction of pixels with the lowest foreground CAM
  (the maximum over the tagged classes' normalised CAMs).
- A pixel claimed by two classes (two foreground classes, or foreground and background) is a
  conflict and is ignored, like every unclaimed pixel (``255``).
"""

from __future__ import annotations

import torch

from sal_lightning._checks import check_tensor

IGNORE_INDEX = 255


def normalize_cams(cams: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Keep the tagged classes' CAMs, clamp at 0, and divide each by its maximum.

    cams: ``[B, C, H, W]`` float; tags: ``[B, C]`` multi-hot. Returns ``[B, C, H, W]`` in [0, 1],
    zero for untagged classes and for classes whose CAM is nowhere positive.
    """
    dims: dict[str, int] = {}
    check_tensor(cams, "cams", "B C H W", "float", dims=dims)
    check_tensor(tags, "tags", "B C", "any", dims=dims)
    cams = cams.clamp_min(0) * (tags > 0.5)[:, :, None, None]
    peak = cams.flatten(2).amax(-1)[:, :, None, None]
    return torch.where(peak > 0, cams / peak.clamp_min(torch.finfo(cams.dtype).tiny), torch.zeros_like(cams))


def seeds_from_cams(
    cams: torch.Tensor,
    tags: torch.Tensor,
    saliency: torch.Tensor | None = None,
    fg_ratio: float = 0.2,
    bg_saliency: float = 0.06,
    bg_quantile: float = 0.3,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Seed label maps from CAMs (foreground) and saliency or low CAM (background).

    cams: ``[B, C, H, W]`` float, one map per foreground class (raw or max-normalised; the
    threshold is relative to each class's maximum). tags: ``[B, C]`` multi-hot.
    saliency: ``[B, H, W]`` float in [0, 1] (a 0..255 PNG divided by 255), or None.
    Returns ``[B, H, W]`` long: 0 = background, ``c + 1`` = foreground class ``c``,
    ``ignore_index`` = unlabelled or conflicting.
    """
    dims: dict[str, int] = {}
    check_tensor(cams, "cams", "B C H W", "float", dims=dims)
    check_tensor(tags, "tags", "B C", "any", dims=dims)
    for name, value in (("fg_ratio", fg_ratio), ("bg_saliency", bg_saliency), ("bg_quantile", bg_quantile)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
    norm = normalize_cams(cams, tags)
    fg = (norm > fg_ratio) & (tags > 0.5)[:, :, None, None]  # [B, C, H, W]
    if saliency is not None:
        check_tensor(saliency, "saliency", "B H W", "float", dims=dims)
        if bool((saliency < 0).any() or (saliency > 1).any()):
            raise ValueError("saliency: expected values in [0, 1] (divide a 0..255 map by 255)")
        bg = saliency < bg_saliency
    else:
        strength = norm.amax(1)  # [B, H, W]
        cut = torch.quantile(strength.flatten(1).float(), bg_quantile, dim=1).to(strength.dtype)
        bg = strength <= cut[:, None, None]
    claims = fg.sum(1) + bg.to(torch.long)
    labels = torch.where(bg, 0, fg.to(torch.uint8).argmax(1) + 1)
    return torch.where(claims == 1, labels, ignore_index).long()
