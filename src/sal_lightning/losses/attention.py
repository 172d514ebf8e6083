"""Attention (SAL-Net Eq. 11 and 12): class scores re-weight the segmentation and learn from tags.

Eq. 11, ``Z_hat = Z (x) d_s``, multiplies the segmentation probabilities ``Z`` channel-wise by the
class scores ``d_s``. ``Z`` has a background channel that ``d_s`` lacks, so the attention weights
are ``a = [1, sigmoid(d_s)]`` and the product is renormalised per pixel:
``Z_hat = Z * a / sum_k Z_k a_k = softmax(z + log a)``. :func:`attention_refine` returns those
logits ``z + log a``; feed them to a cross-entropy (e.g. :class:`~sal_lightning.losses.SelectionLoss`).

Eq. 12 as printed sums only over the present tags, which any network minimises by calling every
class present. :class:`AttentionLoss` is therefore the multi-label soft margin loss (binary
cross-entropy over all classes, present and absent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor


def attention_refine(seg_logits: Tensor, class_logits: Tensor) -> Tensor:
    """Re-weight segmentation logits by class scores (Eq. 11, renormalised).

    Adds ``logsigmoid(class_logits)`` to the foreground channels; the background channel is
    unchanged. ``softmax(result, dim=1)`` equals ``Z * [1, sigmoid(d_s)]`` normalised over channels,
    with ``Z = softmax(seg_logits, dim=1)``. Numerically stable for any logits and safe under
    autocast (one broadcast add).

    Args:
        seg_logits: ``[B, C+1, H, W]`` float segmentation logits, channel 0 = background.
        class_logits: ``[B, C]`` float class scores ``d_s`` (e.g. from
            :class:`~sal_lightning.nn.HybridDilatedClassifier`).

    Returns:
        ``[B, C+1, H, W]`` refined logits.
    """
    dims: dict[str, int] = {}
    check_tensor(class_logits, "class_logits", "B C", "float", dims=dims)
    check_tensor(seg_logits, "seg_logits", "B K H W", "float", dims=dims)
    if seg_logits.shape[1] != dims["C"] + 1:
        raise ValueError(
            f"seg_logits: expected C+1 = {dims['C'] + 1} channels (background + class_logits' C = "
            f"{dims['C']}), got shape {list(seg_logits.shape)}"
        )
    log_attention = F.pad(F.logsigmoid(class_logits), (1, 0))  # [B, C+1], background log(1) = 0
    return seg_logits + log_attention[:, :, None, None]


class AttentionLoss(nn.Module):
    """Attention loss (Eq. 12) as multi-label soft margin: mean binary cross-entropy with logits.

    ``loss = mean_{i, c} BCE(class_logits[i, c], tags[i, c])`` over all ``C`` classes, equal to
    ``F.multilabel_soft_margin_loss(class_logits, tags)``.
    """

    def forward(self, class_logits: Tensor, tags: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            class_logits: ``[B, C]`` float class scores ``d_s``.
            tags: ``[B, C]`` multi-hot image tags (float in ``[0, 1]``, int or bool), no background.

        Returns:
            A scalar tensor, float32 (float64 for float64 logits).
        """
        dims: dict[str, int] = {}
        check_tensor(class_logits, "class_logits", "B C", "float", dims=dims)
        check_tensor(tags, "tags", "B C", "any", dims=dims)
        dtype = torch.promote_types(class_logits.dtype, torch.float32)  # half precision -> float32
        return F.binary_cross_entropy_with_logits(class_logits.to(dtype), tags.to(dtype))
