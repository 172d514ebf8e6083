"""IoU from the torchmetrics confusion matrix: hand-worked cases and torchmetrics' own Jaccard index."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from sal_lightning.models.metrics import (
    confusion_matrix_metric,
    format_iou_table,
    iou_from_confusion,
    mean_iou,
)


def test_hand_worked_iou_with_ignore_and_absent_class() -> None:
    # 2x3 image, classes 0..3; 255 is ignored; class 3 appears nowhere.
    target = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    preds = torch.tensor([[[0, 1, 1], [1, 0, 2]]])
    metric = confusion_matrix_metric(4)
    metric.update(preds, target)
    confmat = metric.compute()
    assert confmat.sum() == 5  # the ignored pixel is not counted
    iou = iou_from_confusion(confmat)
    # class 0: TP 1, FP 1 (the 2 predicted as 0), FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3;
    # class 2: TP 0, FN 1 -> 0; class 3: undefined.
    assert iou[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert math.isnan(iou[3].item())
    assert mean_iou(iou).item() == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


def test_matches_torchmetrics_jaccard_on_random_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 21, (3, 17, 19), generator=gen)
    target[:, :2] = 255
    preds = torch.randint(0, 21, (3, 17, 19), generator=gen)
    metric = confusion_matrix_metric(21)
    for i in range(3):  # accumulates over updates like validation batches
        metric.update(preds[i : i + 1], target[i : i + 1])
    ours = iou_from_confusion(metric.compute())
    reference = MulticlassJaccardIndex(num_classes=21, ignore_index=255, average=None)(preds, target)
    assert torch.allclose(ours.float(), reference, atol=1e-6)


def test_table_lists_every_class_and_the_mean() -> None:
    iou = torch.tensor([0.5, float("nan"), 0.25], dtype=torch.float64)
    table = format_iou_table(iou, ["background", "cat", "dog"])
    lines = table.splitlines()
    assert "50.00" in lines[2] and lines[2].startswith("background")
    assert lines[3].split() == ["cat", "-"]
    assert lines[-1].split() == ["mIoU", "37.50"]


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="class_names"):
        format_iou_table(torch.zeros(3, dtype=torch.float64), ["a", "b"])
    with pytest.raises(ValueError, match="confmat"):
        iou_from_confusion(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix_metric(1)
