"""Lightning callbacks: a prediction writer (one VOC-palette PNG per image id) and a W&B image logger.

Both work with any LightningModule whose steps return the documented dicts:

- ``predict_step`` -> ``{"id": list[str], "labels": list[uint8 tensor [H_i, W_i]]}`` (each label map
  already cropped to its image's original size), as :class:`~sal_lightning.models.SALSegmenter` does;
- ``validation_step`` -> ``{"pred": long tensor [B, H, W]}`` (label maps at batch resolution).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.loggers import WandbLogger

from sal_lightning.data.io import check_image_id, write_label_png
from sal_lightning.data.voc import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, VOC_CLASSES
from sal_lightning.models.inference import to_uint8_images


class SegmentationPredictionWriter(BasePredictionWriter):
    """Writes each predicted label map as ``<output_dir>/<id>.png`` (VOC palette), atomically.

    Label maps may be uint8 ``[H, W]`` tensors or arrays, or ``concurrent.futures.Future`` objects
    resolving to them (CRF running in worker processes): finished ones are written after each batch,
    the rest when the predict epoch ends, so the loop never waits for a CRF here.

    Under DDP every rank writes the ids of its own shard; Lightning's predict loop shards with an
    unrepeated sampler, so each id is written exactly once overall. ``written_ids`` lists what this
    process wrote, in order (a repeated id within one process is an error, never a silent rewrite).

    Args:
        output_dir: folder for the PNGs (created).
        overwrite: rewrite PNGs that exist from an earlier run; when False they are kept and skipped.
    """

    def __init__(self, output_dir: str | os.PathLike[str], overwrite: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self.written_ids: list[str] = []
        self._seen: set[str] = set()
        self._pending: deque[tuple[str, Any]] = deque()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from sal_lightning._atomic import check_writable

        check_writable(self.output_dir, "output_dir")  # before the first batch, not after it
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.written_ids = []
        self._seen = set()
        self._pending = deque()

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, Mapping) or "id" not in prediction or "labels" not in prediction:
            raise ValueError(
                "prediction: expected predict_step to return a dict with 'id' (list[str]) and 'labels' "
                f"(list of uint8 [H, W]), got {type(prediction).__name__}"
            )
        ids, labels = list(prediction["id"]), list(prediction["labels"])
        if len(ids) != len(labels):
            raise ValueError(f"prediction: {len(ids)} ids but {len(labels)} label maps")
        for image_id, label in zip(ids, labels, strict=True):
            check_image_id(image_id, "prediction id")
            if image_id in self._seen:
                raise ValueError(f"prediction id {image_id!r} predicted twice in one run")
            self._seen.add(image_id)
            self._pending.append((image_id, label))
        self._flush(wait=False)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        self._flush(wait=True)

    def _flush(self, wait: bool) -> None:
        """Write the pending label maps that are ready (all of them when ``wait``), in order."""
        while self._pending:
            image_id, label = self._pending[0]
            if isinstance(label, Future):
                if not (wait or label.done()):
                    return
                label = label.result()
            self._pending.popleft()
            path = self.output_dir / f"{image_id}.png"
            if not self.overwrite and path.exists():
                continue
            array = label.cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
            write_label_png(path, np.ascontiguousarray(array.astype(np.uint8, copy=False)))
            self.written_ids.append(image_id)


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
        class_names: label names in index order (VOC's 21 by default).
        mean, std: the input normalisation to undo for display.
        prefix: key prefix.
    """

    def __init__(
        self,
        num_images: int = 4,
        class_names: Sequence[str] = VOC_CLASSES,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        prefix: str = "val",
    ) -> None:
        super().__init__()
        if num_images < 0:
            raise ValueError(f"num_images: expected >= 0, got {num_images}")
        self.num_images = num_images
        self.class_labels = {i: name for i, name in enumerate(class_names)} | {IGNORE_INDEX: "void"}
        self.mean, self.std, self.prefix = tuple(mean), tuple(std), prefix
        self._images: list[np.ndarray] = []
        self._preds: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    @staticmethod
    def _wandb_logger(trainer: Trainer) -> WandbLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

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
