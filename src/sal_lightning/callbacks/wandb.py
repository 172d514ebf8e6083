"""Weights & Biases images: a few validation images with predicted and true masks, and the IoU table.

Works with any LightningModule whose ``validation_step`` returns ``{"pred": long tensor [B, H, W]}``
(label maps at batch resolution), as :class:`~sal_lightning.models.SALSegmenter` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from sal_lightning.data.voc import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, VOC_CLASSES
from sal_lightning.models.inference import to_uint8_images


def _labels(class_names: Sequence[str]) -> dict[int, str]:
    """W&B's mask class labels: label value -> name, 255 ``void``."""
    return {i: name for i, name in enumerate(class_names)} | {IGNORE_INDEX: "void"}


class WandbSegmentationImages(Callback):
    """Logs a few validation images with predicted and true masks, and the per-class IoU table, to W&B.

    Active only when one of the trainer's loggers is a :class:`~lightning.pytorch.loggers.WandbLogger`
    (otherwise it does nothing). Each validation epoch (not the sanity check) it logs

    - ``<prefix>/images``: the first ``num_images`` validation images as ``wandb.Image`` with
      ``prediction`` and ``ground_truth`` masks (class names from ``class_names``; 255 = ``void``);
    - ``<prefix>/class_iou``: a ``wandb.Table`` (class, IoU) from the module's ``class_iou`` dict,
      when the module has one (:class:`~sal_lightning.models.SALSegmenter` fills it).

    Args:
        num_images: how many validation images to show.
        class_names: label names in index order (``None``: the module's ``class_names``, which the
            trainer commands take from the data root's ``classes.txt``; VOC's 21 without them).
        mean, std: the input normalisation to undo for display.
        prefix: key prefix.
    """

    def __init__(
        self,
        num_images: int = 4,
        class_names: Sequence[str] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        prefix: str = "val",
    ) -> None:
        super().__init__()
        if num_images < 0:
            raise ValueError(f"num_images: expected >= 0, got {num_images}")
        self.num_images = num_images
        self.class_names = None if class_names is None else tuple(class_names)
        self.class_labels = _labels(self.class_names or VOC_CLASSES)
        self.mean, self.std, self.prefix = tuple(mean), tuple(std), prefix
        self._images: list[np.ndarray] = []
        self._preds: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    @staticmethod
    def _wandb_logger(trainer: Trainer) -> WandbLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.class_names is None and getattr(pl_module, "class_names", None):
            self.class_labels = _labels(pl_module.class_names)  # type: ignore[arg-type]

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._images, self._preds, self._masks = [], [], []

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        room = self.num_images - len(self._images)
        if room <= 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self._wandb_logger(trainer) is None or not isinstance(outputs, Mapping) or "pred" not in outputs:
            return
        images = to_uint8_images(batch["image"][:room], self.mean, self.std)
        preds = outputs["pred"][:room].cpu().numpy().astype(np.uint8)
        masks = batch["mask"][:room].cpu().numpy().astype(np.uint8)
        sizes = batch.get("size")
        for i in range(images.shape[0]):
            h, w = (int(sizes[i][0]), int(sizes[i][1])) if sizes is not None else images.shape[1:3]
            self._images.append(images[i, :h, :w])
            self._preds.append(preds[i, :h, :w])
            self._masks.append(masks[i, :h, :w])

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = self._wandb_logger(trainer)
        if logger is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self._images:
            masks = [
                {
                    "prediction": {"mask_data": pred, "class_labels": self.class_labels},
                    "ground_truth": {"mask_data": mask, "class_labels": self.class_labels},
                }
                for pred, mask in zip(self._preds, self._masks, strict=True)
            ]
            logger.log_image(
                f"{self.prefix}/images", list(self._images), step=trainer.global_step, masks=masks
            )
        class_iou: Mapping[str, float] | None = getattr(pl_module, "class_iou", None)
        if class_iou:
            logger.log_table(
                f"{self.prefix}/class_iou",
                columns=["class", "iou"],
                data=[[name, float(value)] for name, value in class_iou.items()],
                step=trainer.global_step,
            )
