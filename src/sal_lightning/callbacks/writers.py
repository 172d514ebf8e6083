"""Prediction writers: every offline stage is a Lightning ``predict`` loop ending in one of these.

- :class:`SegmentationPredictionWriter`: one VOC-palette label PNG per image id;
- :class:`CAMWriter`: one compressed CAM file per image id (:func:`~sal_lightning.data.io.write_cams`);
- :class:`ScoresWriter`: one row per image id of ``scores.csv``, gathered from every DDP rank.

Each reads the dict that ``predict_step`` returns: ``{"id": list[str], ...}`` plus the writer's own
keys. Under DDP, Lightning's predict loop shards with an unrepeated sampler: the file writers write
the ids of their own shard, the scores writer gathers the rows and rank 0 writes the table.
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
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from sal_lightning._atomic import check_writable
from sal_lightning.data.io import check_image_id, write_cams, write_label_png, write_scores
from sal_lightning.data.voc import NUM_CLASSES


class _BatchWriter(BasePredictionWriter):
    """A writer called after every predict batch with the batch's prediction dict.

    ``keys``: what ``predict_step`` must return besides ``id`` (checked, one line naming them).
    """

    keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__(write_interval="batch")

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
        wanted = ("id", *self.keys)
        if not isinstance(prediction, Mapping) or not set(wanted) <= set(prediction):
            raise ValueError(
                f"prediction: expected predict_step to return a dict with {list(wanted)}, "
                f"got {type(prediction).__name__}"
            )
        self.write_batch(prediction)

    def write_batch(self, prediction: Mapping[str, Any]) -> None:
        """Write one batch's prediction (its ``id`` and :attr:`keys`)."""
        raise NotImplementedError


class _FileWriter(_BatchWriter):
    """Writes one file per image id into ``output_dir`` (checked for writing before the first batch).

    ``overwrite=False`` keeps files that exist (a rerun resumes); ``written_ids`` lists what this
    process wrote, in order.
    """

    def __init__(self, output_dir: str | os.PathLike[str], overwrite: bool = True) -> None:
        super().__init__()
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self.written_ids: list[str] = []

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        check_writable(self.output_dir, "output_dir")  # before the first batch, not after it
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.written_ids = []

    def _target(self, image_id: str, suffix: str) -> Path | None:
        """The file of ``image_id``, or ``None`` when it exists and is kept."""
        path = self.output_dir / f"{check_image_id(image_id, 'prediction id')}{suffix}"
        return None if not self.overwrite and path.exists() else path


class SegmentationPredictionWriter(_FileWriter):
    """Writes each predicted label map as ``<output_dir>/<id>.png`` (VOC palette), atomically.

    Expects ``{"id": list[str], "labels": list[uint8 [H_i, W_i]]}`` (each map cropped to its image's
    size), as :class:`~sal_lightning.models.SALSegmenter` returns. Label maps may be tensors, arrays
    or ``concurrent.futures.Future`` objects resolving to them (CRF running in worker processes):
    finished ones are written after each batch, the rest when the predict epoch ends, so the loop
    never waits for a CRF here. A repeated id within one run is an error, never a silent rewrite.

    Args:
        output_dir: folder for the PNGs (created).
        overwrite: rewrite PNGs that exist from an earlier run; when False they are kept and skipped.
    """

    keys = ("labels",)

    def __init__(self, output_dir: str | os.PathLike[str], overwrite: bool = True) -> None:
        super().__init__(output_dir, overwrite)
        self.num_classes = NUM_CLASSES
        self._seen: set[str] = set()
        self._pending: deque[tuple[str, Any]] = deque()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self._seen = set()
        self._pending = deque()
        # K of the labels (palette and range check): the module's, else VOC's 21
        self.num_classes = int(getattr(pl_module, "hparams", {}).get("num_classes") or NUM_CLASSES)

    def write_batch(self, prediction: Mapping[str, Any]) -> None:
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
            path = self._target(image_id, ".png")
            if path is None:
                continue
            array = label.cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
            labels = np.ascontiguousarray(array.astype(np.uint8, copy=False))
            write_label_png(path, labels, self.num_classes)
            self.written_ids.append(image_id)


class CAMWriter(_FileWriter):
    """Writes ``<output_dir>/<id>.npz`` (:func:`~sal_lightning.data.io.write_cams`) per image.

    Expects ``{"id": list[str], "cams": list[float [n, H, W]], "labels": list[int [n]]}`` as
    :class:`~sal_lightning.models.CAMClassifier` returns.
    """

    keys = ("cams", "labels")

    def write_batch(self, prediction: Mapping[str, Any]) -> None:
        for image_id, cams, labels in zip(
            prediction["id"], prediction["cams"], prediction["labels"], strict=True
        ):
            path = self._target(image_id, ".npz")
            if path is not None:
                write_cams(path, np.asarray(cams), np.asarray(labels))
                self.written_ids.append(image_id)


class ScoresWriter(_BatchWriter):
    """Collects ``{"id": [...], <column>: [B]}`` predictions and writes them to ``scores.csv``.

    At the end of the predict epoch the rows of every rank are gathered (``all_gather_object``)
    and rank 0 writes them with ``config`` into the sidecar through
    :func:`~sal_lightning.data.io.write_scores` (which keeps the columns other steps filled); ids
    seen twice (a padded DDP shard) are written once. ``rows`` holds the merged rows afterwards
    (on every rank).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        columns: Sequence[str],
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.keys = tuple(columns)
        self.config = dict(config or {})
        self.rows: dict[str, dict[str, float]] = {}

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.rows = {}

    def write_batch(self, prediction: Mapping[str, Any]) -> None:
        values = {c: torch.as_tensor(prediction[c]).detach().float().cpu().tolist() for c in self.keys}
        for k, image_id in enumerate(prediction["id"]):
            self.rows[image_id] = {c: float(values[c][k]) for c in self.keys}

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, self.rows)
            merged: dict[str, dict[str, float]] = {}
            for part in gathered:
                merged.update(part)
            self.rows = merged
        if trainer.is_global_zero:
            write_scores(self.path, self.rows, self.config)
        trainer.strategy.barrier()
