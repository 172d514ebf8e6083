"""Selection loss (SAL-Net Eq. 8, 9, 13): cross-entropy on proxy annotations, weighted per image.

Eq. 13 of the paper is ``L_sel = -sum_i w_i sum_px log Z[G_i]``; Eq. 9 sets ``w_i = 1`` when the
proxy's score ``SF_i >= tau`` and 0 otherwise. Here the weighted sum is normalised by the weighted
number of valid pixels (see :class:`SelectionLoss`), so that dropping images does not shrink the
gradient scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sal_lightning._checks import check_tensor

WeightMode = Literal["hard", "soft", "score"]


class _PerImageCrossEntropy(torch.autograd.Function):
    """``S_i = sum_px ce_ip`` over the valid pixels of each image, with a lean backward pass.

    Equal to ``F.cross_entropy(..., reduction="none").sum((1, 2))``, but the backward pass builds the
    gradient ``(softmax - onehot) * dS_i`` in one buffer instead of the two (zero-filled
    ``nll_loss`` gradient, then ``log_softmax`` backward) that autograd would allocate: on CPU,
    where fresh buffers cost page faults, this pays for :func:`attention_refine`'s extra one.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
        valid = target != ignore_index  # [B, H, W]
        safe = torch.where(valid, target, torch.zeros_like(target))[:, None]  # [B, 1, H, W]
        compute = torch.promote_types(logits.dtype, torch.float32)  # half precision -> float32
        with torch.autocast(logits.device.type, enabled=False):
            log_prob = torch.log_softmax(logits.to(compute), dim=1)  # [B, K, H, W]
        picked = log_prob.gather(1, safe)[:, 0]  # [B, H, W]
        ctx.save_for_backward(log_prob, safe, valid)
        ctx.logits_dtype = logits.dtype
        return -(picked * valid).sum(dim=(1, 2))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_per_image: Tensor) -> tuple[Tensor, None, None]:
        log_prob, safe, valid = ctx.saved_tensors
        scale = (grad_per_image[:, None, None] * valid)[:, None]  # [B, 1, H, W]
        grad = log_prob.exp().mul_(scale)  # softmax * scale
        grad.scatter_add_(1, safe, -scale)  # - onehot * scale
        return grad.to(ctx.logits_dtype), None, None


def per_image_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = 255) -> tuple[Tensor, Tensor]:
    """Per-image sums of pixel cross-entropies and numbers of valid pixels.

    Args:
        logits: ``[B, K, H, W]`` float.
        target: ``[B, H, W]`` int, class indices in ``0..K-1`` or ``ignore_index`` (anything else
            raises a ``ValueError`` naming ``target``).
        ignore_index: target value of unlabelled pixels (they contribute nothing).

    Returns:
        ``(S, n)``: ``[B]`` sums ``S_i = sum_px ce_ip`` (differentiable in ``logits``; float32, or
        float64 for float64 logits) and ``[B]`` valid-pixel counts ``n_i`` in the same dtype.
    """
    dims: dict[str, int] = {}
    check_tensor(logits, "logits", "B K H W", "float", dims=dims)
    check_tensor(target, "target", "B H W", "int", dims=dims)
    classes = logits.shape[1]
    outside = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bool(
        outside.any()
    ):  # one check per call (a device sync), instead of an index error or a device assert
        found = sorted(int(v) for v in target[outside].unique()[:5])
        raise ValueError(
            f"target: class indices must be in 0..{classes - 1} (logits have K={classes} channels) or "
            f"ignore_index={ignore_index}, found {found}; check the labels' class count or ignore_index"
        )
    per_image = _PerImageCrossEntropy.apply(logits, target.long(), int(ignore_index))
    n_valid = (target != ignore_index).sum(dim=(1, 2)).to(per_image.dtype)
    return per_image, n_valid


class SelectionLoss(nn.Module):
    """Per-image weighted cross-entropy on proxy annotations (Eq. 8 and 13).

    ``loss = sum_i w_i sum_px ce_ip / max(sum_i w_i n_i, eps)``, where ``ce_ip`` is the
    cross-entropy of pixel ``p`` of image ``i`` and ``n_i`` the number of its pixels whose target is
    not ``ignore_index``.

    - Hard weights (0/1, Eq. 9): the mean cross-entropy over the selected images' valid pixels.
    - Soft weights (any values ``>= 0``): a weighted mean of the per-pixel cross-entropies; scaling
      all weights by a constant leaves the loss unchanged.
    - All weights zero, or no valid pixel: 0, still attached to the graph (gradients are zero),
      never NaN.
    - ``weight=None``: plain cross-entropy with ignore (Eq. 2; equal to ``F.cross_entropy`` with
      ``ignore_index``, except that an all-ignored batch gives 0 instead of NaN).

    Weights are not checked for sign or NaN (that would synchronise with the device);
    :func:`selection_weights` never produces either.

    Args:
        ignore_index: target value that marks unlabelled pixels.
        eps: lower bound of the denominator.
    """

    def __init__(self, ignore_index: int = 255, eps: float = 1e-6) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.eps = float(eps)

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            logits: ``[B, K, H, W]`` float, unnormalised class scores (e.g. from
                :func:`~sal_lightning.losses.attention_refine`).
            target: ``[B, H, W]`` int, class indices in ``0..K-1`` or ``ignore_index``.
            weight: ``[B]`` float per-image weights ``>= 0``, or ``None`` for all ones.

        Returns:
            A scalar tensor, float32 (float64 for float64 logits).
        """
        per_image, n_valid = per_image_cross_entropy(logits, target, self.ignore_index)
        if weight is not None:
            check_tensor(weight, "weight", "B", "float", dims={"B": logits.shape[0]})
        if weight is None:
            return per_image.sum() / n_valid.sum().clamp_min(self.eps)
        w = weight.to(per_image.dtype)
        return (w * per_image).sum() / (w * n_valid).sum().clamp_min(self.eps)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, eps={self.eps}"


def selection_weights(
    scores: Tensor | Sequence[float],
    tau: float,
    mode: WeightMode = "hard",
    temperature: float = 0.05,
) -> Tensor:
    """Per-image weights from proxy-quality scores (Eq. 9 and two soft options).

    Args:
        scores: ``[N]`` float scores (``SF_i``, or ``SC_i``), a tensor or a sequence of floats.
            NaN marks a missing score (e.g. an empty proxy mask) and always gives weight 0.
        tau: selection threshold (paper: 0.55 for VGG16, 0.85 for ResNet-101).
        mode: ``"hard"``: ``w_i = 1 if score_i >= tau else 0`` (Eq. 9, the paper).
            ``"soft"``: ``w_i = sigmoid((score_i - tau) / temperature)``, a smooth step around
            ``tau`` (0.5 at ``tau``; tends to ``"hard"`` as ``temperature -> 0``).
            ``"score"``: ``w_i = max(score_i, 0)``, the raw score as weight (``tau`` unused).
            The two soft modes go beyond the paper.
        temperature: width of the ``"soft"`` step, in score units; must be ``> 0``.

    Returns:
        ``[N]`` weights in ``[0, 1]`` (``"score"``: ``>= 0``), float32 unless ``scores`` is
        float64, on the scores' device.
    """
    if not isinstance(scores, Tensor):
        try:
            scores = torch.as_tensor(scores, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"scores: expected a 1-D tensor or sequence of floats, got {scores!r}") from err
    check_tensor(scores, "scores", "N", "float")
    if not isinstance(tau, (int, float)) or tau != tau:
        raise ValueError(f"tau: expected a finite number, got {tau!r}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected a number > 0, got {temperature!r}")
    s = scores if scores.dtype == torch.float64 else scores.to(torch.float32)
    missing = torch.isnan(s)
    if mode == "hard":
        w = (s >= tau).to(s.dtype)
    elif mode == "soft":
        w = torch.sigmoid((s - tau) / temperature)
    elif mode == "score":
        w = s.clamp_min(0.0)
    else:
        raise ValueError(f"mode: expected 'hard', 'soft' or 'score', got {mode!r}")
    return torch.where(missing, torch.zeros_like(w), w)
