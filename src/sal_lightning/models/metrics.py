"""Segmentation quality from a confusion matrix: per-class IoU, mean IoU, a printable table.

The confusion matrix itself is torchmetrics' ``MulticlassConfusionMatrix`` (pixels whose target is
the ignore index are dropped; under DDP its state is summed across processes before ``compute``),
so these functions only turn the summed ``[K, K]`` counts into IoU figures. Keeping them pure makes
them usable on any confusion matrix (for example one summed over saved predictions).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from sal_lightning._checks import check_tensor


def confusion_matrix_metric(num_classes: int, ignore_index: int = 255) -> MulticlassConfusionMatrix:
    """A DDP-aware pixel confusion matrix over ``num_classes`` classes that skips ``ignore_index``.

    ``update(preds, target)`` takes label maps ``preds: [B, H, W] long`` and ``target: [B, H, W] long``
    (values ``0..num_classes-1`` or ``ignore_index``); ``compute()`` returns ``[K, K]`` counts with
    rows = true class and columns = predicted class.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes: expected at least 2 classes, got {num_classes}")
    return MulticlassConfusionMatrix(num_classes=num_classes, ignore_index=ignore_index, validate_args=False)


def iou_from_confusion(confmat: torch.Tensor) -> torch.Tensor:
    """Per-class intersection over union from a confusion matrix.

    Args:
        confmat: ``[K, K]`` counts, rows = true class, columns = predicted class.

    Returns:
        ``[K] float64``: ``TP / (TP + FP + FN)`` per class; ``NaN`` for a class that appears in
        neither the targets nor the predictions (its IoU is undefined, not 0).
    """
    check_tensor(confmat, "confmat", "K K")
    counts = confmat.to(torch.float64)
    tp = counts.diagonal()
    union = counts.sum(0) + counts.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou(iou: torch.Tensor) -> torch.Tensor:
    """Mean of the defined per-class IoUs (``iou: [K]``, NaN entries skipped); a 0-dim tensor.

    On PASCAL VOC val every class occurs, so this is the standard 21-class mIoU. It is NaN only
    when no class is defined at all (no labelled pixel and no prediction).
    """
    check_tensor(iou, "iou", "K", "float")
    return iou.nanmean()


def format_iou_table(iou: torch.Tensor, class_names: Sequence[str]) -> str:
    """A fixed-width text table of per-class IoU (in percent) ending with the mIoU row.

    Args:
        iou: ``[K]`` per-class IoU in ``[0, 1]`` (NaN = class absent, printed as ``-``).
        class_names: ``K`` names, in class-index order.
    """
    check_tensor(iou, "iou", "K", "float")
    if len(class_names) != iou.numel():
        raise ValueError(f"class_names: expected {iou.numel()} names (one per class), got {len(class_names)}")
    width = max(len("class"), len("mIoU"), *(len(n) for n in class_names))
    lines = [f"{'class':<{width}}  IoU (%)", "-" * (width + 9)]
    for name, value in zip(class_names, iou.tolist(), strict=True):
        shown = "      -" if value != value else f"{100 * value:7.2f}"
        lines.append(f"{name:<{width}}  {shown}")
    lines.append("-" * (width + 9))
    lines.append(f"{'mIoU':<{width}}  {100 * float(mean_iou(iou)):7.2f}")
    return "\n".join(lines)
