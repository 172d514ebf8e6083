"""Labels against the ground truth: seeds, proxies and predictions (where the split has ground truth).

- :func:`label_quality`: a folder of label maps against the ground truth: mIoU, precision,
  coverage, per-class IoU (seeds and proxies of step 1, predictions of P1..P5);
- :func:`true_quality`: per proxy, its *true* AC (Eq. 3 with the ground-truth foreground as the
  reference, void pixels ignored, ``F = 1``) and its confusion matrix against the ground truth:
  what the scores are measured against (Fig. 9);
- :func:`proxy_miou`: per proxy, its mIoU against the ground truth: what the oracle selection ranks by.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from sal_lightning._lazy import lazy_module
from sal_lightning.data.io import check_unique_ids, read_label_png
from sal_lightning.data.layout import GT_DIRS, find_gt_mask, resolve_voc_root, root_classes
from sal_lightning.data.voc import IGNORE_INDEX
from sal_lightning.scoring.metrics import Definition, boundary_accuracy

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
else:
    import torch

PathLike = str | os.PathLike[str]


@dataclass
class LabelQuality:
    """Label maps (seeds or proxies) against the ground truth.

    Attributes:
        miou: mean IoU over the classes present (unlabelled predictions count as misses).
        precision: share of the labelled predicted pixels that are right (on ground-truth pixels).
        coverage: share of the ground-truth pixels that got a label.
        images: images scored (with ground truth); missing: ids without a ground-truth mask.
        class_iou: class name -> IoU (NaN: class absent from both).
    """

    miou: float
    precision: float
    coverage: float
    images: int
    missing: int
    class_iou: dict[str, float]


def label_quality(
    labels: PathLike,
    root: PathLike,
    *,
    ids: Sequence[str],
    gt_dirs: Sequence[str] = GT_DIRS,
    class_names: Sequence[str] | None = None,
) -> LabelQuality:
    """Score the label maps ``<labels>/<id>.png`` against the ground truth of ``root`` (ids without
    a ground-truth mask are skipped).

    ``class_names``: the K classes, background first (default: the root's ``classes.txt``, else
    VOC's 21); label values ``0..K-1`` and 255.

    Predicted 255 (unlabelled) is an extra confusion column, so it lowers each class's IoU like a
    miss but never counts as a wrong class; ground-truth 255 pixels are left out.
    """
    from sal_lightning.models.metrics import confusion_matrix_metric, iou_from_confusion, mean_iou

    voc, folder = resolve_voc_root(root), Path(labels)
    class_names = root_classes(voc) if class_names is None else tuple(class_names)
    num_classes = len(class_names)
    metric = confusion_matrix_metric(num_classes + 1, IGNORE_INDEX)  # column K: unlabelled
    images = missing = 0
    for image_id in tqdm(ids, desc="scoring", unit="img", disable=len(ids) < 200):
        gt_path = find_gt_mask(voc, image_id, gt_dirs)
        if gt_path is None:
            missing += 1
            continue
        pred = torch.from_numpy(read_label_png(folder / f"{image_id}.png", num_classes).astype(np.int64))
        gt = torch.from_numpy(read_label_png(gt_path, num_classes).astype(np.int64))
        if pred.shape != gt.shape:
            raise ValueError(f"{folder / image_id}.png: size {tuple(pred.shape)} differs from {gt_path}")
        metric.update(torch.where(pred == IGNORE_INDEX, num_classes, pred)[None], gt[None])
        images += 1
    square = metric.compute()  # [K + 1, K + 1], rows = truth (row K empty), columns = prediction
    iou = iou_from_confusion(square)[:num_classes]
    confusion = square[:num_classes]
    labelled = confusion[:, :num_classes]
    return LabelQuality(
        miou=float(mean_iou(iou)) if images else float("nan"),
        precision=float(labelled.trace() / labelled.sum().clamp_min(1)),
        coverage=float(labelled.sum() / confusion.sum().clamp_min(1)),
        images=images,
        missing=missing,
        class_iou=dict(zip(class_names, iou.tolist(), strict=True)),
    )


@dataclass
class TrueQuality:
    """Ground-truth view of a set of proxies.

    Attributes:
        ac: id -> true AC (float).
        confusion: id -> int64 pixel counts (rows = ground truth, columns = proxy): ``[n, n]`` over
            the ``n`` classes of ``classes[id]`` (those in either mask, a few per image whatever K
            is: 82k COCO images hold kilobytes, not 81 x 81 tables each), or ``[K, K]`` over every
            class when ``classes`` is ``None``.
        classes: id -> long ``[n]``, the label values of the rows / columns of ``confusion[id]``.
    """

    ac: dict[str, float]
    confusion: dict[str, torch.Tensor]
    classes: dict[str, torch.Tensor] | None = None

    def pooled(self, ids: Sequence[str]) -> torch.Tensor:
        """The summed confusion of ``ids``, int64 ``[K', K']`` (K': the largest label seen + 1)."""
        if self.classes is None:
            return torch.stack([self.confusion[i] for i in ids]).sum(0)
        size = 1 + max((int(self.classes[i].max()) for i in ids if len(self.classes[i])), default=0)
        total = torch.zeros(size, size, dtype=torch.long)
        for i in ids:
            index = self.classes[i]
            total[index[:, None], index[None, :]] += self.confusion[i]
        return total


def true_quality(
    root: PathLike,
    ids: Sequence[str],
    *,
    proxies: PathLike,
    definition: Definition = "paper",
    progress: bool = True,
) -> TrueQuality:
    """True AC and confusion matrix of every proxy ``<proxies>/<id>.png`` against its ground truth.

    Ground truth comes from ``SegmentationClass/`` (else ``SegmentationClassAug/``) under the VOC
    root; its void pixels (255) are removed from both masks before AC and from the confusion. Label
    values are checked against the root's class list; each confusion covers only the classes of
    its image (see :class:`TrueQuality`).
    """
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    voc = resolve_voc_root(root)
    num_classes = len(root_classes(voc))
    ids = check_unique_ids(list(ids), "ids")
    missing = [i for i in ids if find_gt_mask(voc, i) is None]
    if missing:
        raise FileNotFoundError(f"{voc}: {len(missing)} ids have no ground-truth mask, e.g. {missing[:5]}")
    ac: dict[str, float] = {}
    confusion: dict[str, torch.Tensor] = {}
    classes: dict[str, torch.Tensor] = {}
    for image_id in tqdm(ids, desc="true quality", unit="img", disable=not progress):
        gt_labels = read_label_png(find_gt_mask(voc, image_id), num_classes)  # type: ignore[arg-type]
        gt = torch.tensor(gt_labels, dtype=torch.long)
        proxy = torch.tensor(read_label_png(Path(proxies) / f"{image_id}.png", num_classes), dtype=torch.long)
        if gt.shape != proxy.shape:
            raise ValueError(
                f"{proxies}/{image_id}.png: size {tuple(proxy.shape)} differs from the ground truth"
            )
        valid = gt != IGNORE_INDEX
        ref = (gt > 0) & valid
        fg = (proxy > 0) & (proxy != IGNORE_INDEX) & valid
        ac[image_id] = float(boundary_accuracy(ref, fg, definition=definition))
        pred = torch.where(proxy == IGNORE_INDEX, torch.zeros_like(proxy), proxy)[valid]
        present = torch.unique(torch.cat([pred, gt[valid], torch.zeros(1, dtype=torch.long)]))
        lookup = torch.zeros(num_classes, dtype=torch.long)
        lookup[present] = torch.arange(len(present))
        confusion[image_id] = multiclass_confusion_matrix(
            lookup[pred], lookup[gt[valid]], len(present), validate_args=False
        ).long()
        classes[image_id] = present
    return TrueQuality(ac, confusion, classes)


def has_ground_truth(root: PathLike, ids: Sequence[str]) -> bool:
    """Whether every id has a ground-truth mask under the VOC root (so the true quality exists)."""
    voc = resolve_voc_root(root)
    return all(find_gt_mask(voc, i) is not None for i in ids)


def proxy_miou(truth: TrueQuality) -> dict[str, float]:
    """Per proxy, its mean IoU against the ground truth over the classes present in either (the
    class-aware true quality, which the oracle selection ranks by)."""
    from sal_lightning.models.metrics import iou_from_confusion, mean_iou

    return {i: float(mean_iou(iou_from_confusion(c))) for i, c in truth.confusion.items()}
