"""SEC / DSRG training losses for the initial proxy network (paper Sec. III-A, Eq. 1).

Three terms supervise a segmentation network from image tags and sparse seeds:

- :class:`SeedLoss`: cross-entropy on the seed pixels. The default is DSRG's class-balanced form
  (mean CE over the foreground seed pixels + mean CE over the background seed pixels of the batch);
  ``balanced=False`` gives SEC's plain form (mean CE over each image's seed pixels, averaged over
  the images that have seeds).
- :class:`ExpandLoss`: SEC's expand loss with global weighted rank pooling
  (:func:`global_weighted_rank_pooling`): present foreground classes pooled with decay 0.996, the
  background with 0.999, absent classes max-pooled with ``-log(1 - max)``.
- :class:`ConstrainLoss`: ``KL(Q || p)`` with ``Q`` a refinement of the network's own output (the
  dense CRF in SEC), treated as a constant.

All three take logits ``[B, K, H, W]`` with channel 0 the background and channels 1..K-1 the
foreground classes, the layout of the VOC label maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sal_lightning._checks import check_tensor

IGNORE_INDEX = 255


def global_weighted_rank_pooling(scores: torch.Tensor, decay: float) -> torch.Tensor:
    """SEC's global weighted rank pooling over the last two dimensions.

    The values of each map are sorted in decreasing order ``x_1 >= x_2 >= ... >= x_n`` and averaged
    with weights ``decay ** (j - 1)``: ``G = sum_j decay^(j-1) x_j / sum_j decay^(j-1)``.
    ``decay = 1`` is average pooling, ``decay = 0`` max pooling.

    scores: ``[..., H, W]`` float. Returns ``[...]``.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() < 2 or not scores.is_floating_point():
        raise ValueError(f"scores: expected a float tensor [..., H, W], got {scores!r:.80}")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay: expected a value in [0, 1], got {decay}")
    flat = scores.flatten(-2)
    ranked = flat.sort(dim=-1, descending=True).values
    n = ranked.shape[-1]
    exponents = torch.arange(n, device=scores.device, dtype=scores.dtype)
    weights = torch.pow(torch.tensor(decay, device=scores.device, dtype=scores.dtype), exponents)
    weights[0] = 1.0  # 0 ** 0 = 1 for max pooling
    return (ranked * weights).sum(-1) / weights.sum()


class SeedLoss(nn.Module):
    """Cross-entropy on the seed pixels (SEC Eq. "seed loss", DSRG's balanced form by default).

    ``balanced=True`` (DSRG): ``mean_{fg seed px} CE + mean_{bg seed px} CE`` over the whole batch,
    so the usually much larger background seeds do not outweigh the objects. ``balanced=False``
    (SEC): per image the mean CE over its seed pixels, averaged over images with at least one seed.
    A term with no seed pixels is 0 (still part of the graph), never NaN.
    """

    def __init__(self, balanced: bool = True, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.balanced = balanced
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """logits: ``[B, K, H, W]`` float; seeds: ``[B, H, W]`` int (0 = bg, 1..K-1, ``ignore_index``).

        Returns a scalar.
        """
        dims: dict[str, int] = {}
        check_tensor(logits, "logits", "B K H W", "float", dims=dims)
        check_tensor(seeds, "seeds", "B H W", "int", dims=dims)
        valid = seeds != self.ignore_index
        if bool(((seeds < 0) | (seeds >= dims["K"]))[valid].any()):
            raise ValueError(f"seeds: expected labels in [0, {dims['K'] - 1}] or {self.ignore_index}")
        ce = F.cross_entropy(logits, seeds.long(), ignore_index=self.ignore_index, reduction="none")
        if self.balanced:
            bg = (seeds == 0).to(ce.dtype)
            fg = (valid & (seeds > 0)).to(ce.dtype)
            return (ce * fg).sum() / fg.sum().clamp_min(1.0) + (ce * bg).sum() / bg.sum().clamp_min(1.0)
        counts = valid.flatten(1).sum(1).to(ce.dtype)
        per_image = ce.flatten(1).sum(1) / counts.clamp_min(1.0)
        return per_image.sum() / (counts > 0).sum().clamp_min(1).to(ce.dtype)


class ExpandLoss(nn.Module):
    """SEC's expand loss: global weighted rank pooling of the class probabilities against the tags.

    ``L = -1/|T| sum_{c in T} log G_c(d_fg) - 1/|A| sum_{c in A} log(1 - max_u p_uc) - log G_bg(d_bg)``
    per image with ``T`` the tagged and ``A`` the absent foreground classes, averaged over the batch.
    """

    def __init__(self, fg_decay: float = 0.996, bg_decay: float = 0.999, eps: float = 1e-5) -> None:
        super().__init__()
        for name, value in (("fg_decay", fg_decay), ("bg_decay", bg_decay)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        self.fg_decay = fg_decay
        self.bg_decay = bg_decay
        self.eps = eps

    def forward(self, logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """logits: ``[B, C+1, H, W]`` float (channel 0 = background); tags: ``[B, C]`` multi-hot.

        Returns a scalar.
        """
        dims: dict[str, int] = {}
        check_tensor(logits, "logits", "B K H W", "float", dims=dims)
        check_tensor(tags, "tags", "B C", "any", dims=dims)
        if dims["C"] != dims["K"] - 1:
            raise ValueError(
                f"tags: expected {dims['K'] - 1} classes (logits minus background), got {dims['C']}"
            )
        probs = logits.float().softmax(1)
        present = (tags > 0.5).to(probs.dtype)
        absent = 1.0 - present
        fg = probs[:, 1:]
        g_fg = global_weighted_rank_pooling(fg, self.fg_decay)  # [B, C]
        g_max = fg.flatten(2).amax(-1)  # [B, C]
        g_bg = global_weighted_rank_pooling(probs[:, 0], self.bg_decay)  # [B]
        log_g_fg = g_fg.clamp_min(self.eps).log()
        log_not_max = (1.0 - g_max).clamp_min(self.eps).log()
        term_present = -(present * log_g_fg).sum(1) / present.sum(1).clamp_min(1.0)
        term_absent = -(absent * log_not_max).sum(1) / absent.sum(1).clamp_min(1.0)
        term_bg = -g_bg.clamp_min(self.eps).log()
        return (term_present + term_absent + term_bg).mean()


class ConstrainLoss(nn.Module):
    """SEC's constrain loss ``1/n sum_u sum_c Q_uc log(Q_uc / p_uc)`` = ``KL(Q || p)`` per pixel.

    ``Q`` (the dense-CRF refinement of the network's own probabilities) is detached: it is a
    target, no gradient flows into it.
    """

    def forward(self, logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """logits: ``[B, K, H, W]`` float; target_probs: ``[B, K, H, W]`` float, sums to 1 over K.

        Returns a scalar, the mean over pixels and images.
        """
        dims: dict[str, int] = {}
        check_tensor(logits, "logits", "B K H W", "float", dims=dims)
        check_tensor(target_probs, "target_probs", "B K H W", "float", dims=dims)
        log_p = logits.float().log_softmax(1)
        q = target_probs.detach().float()
        kl = F.kl_div(log_p, q, reduction="none").sum(1)  # xlogy: 0 log 0 = 0
        return kl.mean()
