"""Test-time inference of the segmenters: multi-scale (and flip) fusion, dense CRF in a process pool,
argmax, each label map cropped to its image's size (:class:`FusedInference`), and the input
normalisation undone for CRF and display (:func:`to_uint8_images`)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from sal_lightning.data.voc import IMAGENET_MEAN, IMAGENET_STD
from sal_lightning.postprocess.crf import DEEPLAB_TEST_CRF, CRFPool, CRFSettings
from sal_lightning.postprocess.fusion import multiscale_flip_probs

Fuse = Literal["mean", "max"]

INFERENCE_OPTIONS = (
    "refine_at_inference",
    "test_scales",
    "test_flip",
    "test_fuse",
    "crf",
    "crf_params",
    "crf_processes",
)
"""Constructor arguments that only steer inference: attributes of the model, not saved hyperparameters."""


def to_uint8_images(
    image: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Undo the input normalisation ``x = (rgb / 255 - mean) / std``.

    Args:
        image: ``[B, 3, H, W]`` float, normalised.
        mean, std: the 3 per-channel values (in 0..1) the transforms used.

    Returns:
        ``uint8 [B, H, W, 3]`` C-contiguous RGB (the layout dense CRF and W&B expect).
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image: expected a tensor [B, 3, H, W], got {list(image.shape)}")
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    rgb = ((image.detach().float() * s + m) * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(rgb.permute(0, 2, 3, 1).cpu().numpy())


def image_sizes(batch: dict[str, Any]) -> list[tuple[int, int]]:
    """Each image's original (H, W): ``batch["size"]`` or the batch's own size."""
    sizes = batch.get("size")
    if sizes is None:
        h, w = batch["image"].shape[-2:]
        return [(int(h), int(w))] * int(batch["image"].shape[0])
    return [(int(s[0]), int(s[1])) for s in sizes]


class FusedInference:
    """The test-time inference of a segmentation LightningModule (mixed into
    :class:`~sal_lightning.models.SALSegmenter`): ``test`` and ``predict`` fuse ``test_scales`` (and
    flips), optionally refine with dense CRF in a process pool, take the argmax and crop each label
    map to its image's original size.

    The host provides ``segment(image, refine) -> logits [B, K, H, W]``, ``hparams.pixel_mean`` /
    ``pixel_std`` and a trainer; :meth:`set_inference` sets the options (see :data:`INFERENCE_OPTIONS`).
    """

    refine_at_inference: bool
    test_scales: tuple[float, ...]
    test_flip: bool
    test_fuse: Fuse
    crf: bool
    crf_params: CRFSettings | None
    crf_processes: int | None
    hparams: Any
    _trainer: Any
    trainer: Any

    def segment(self, image: Tensor, refine: bool = False) -> Tensor:
        raise NotImplementedError

    def set_inference(
        self,
        *,
        refine_at_inference: bool,
        test_scales: Sequence[float],
        test_flip: bool,
        test_fuse: Fuse,
        crf: bool,
        crf_params: CRFSettings | None,
        crf_processes: int | None,
    ) -> None:
        """Check and set the inference options."""
        if not test_scales or any(s <= 0 for s in test_scales):
            raise ValueError(f"test_scales: expected one or more positive scales, got {test_scales}")
        if test_fuse not in ("mean", "max"):
            raise ValueError(f"test_fuse: expected 'mean' or 'max', got {test_fuse!r}")
        if crf_processes is not None and crf_processes < 0:
            raise ValueError(f"crf_processes: expected >= 0, got {crf_processes}")
        self.refine_at_inference = refine_at_inference
        self.test_scales = tuple(float(s) for s in test_scales)
        self.test_flip = test_flip
        self.test_fuse = test_fuse
        self.crf = crf
        self.crf_params = crf_params
        self.crf_processes = crf_processes
        self._crf_runner: CRFPool | None = None
        self._crf_inflight: deque[Future[np.ndarray]] = deque()

    def infer_probs(self, image: Tensor) -> Tensor:
        """Class probabilities ``[B, K, H, W]`` fused over ``test_scales`` (and flips)."""
        refine = bool(self.refine_at_inference)
        return multiscale_flip_probs(
            lambda x: self.segment(x, refine=refine),
            image,
            scales=self.test_scales,
            flip=self.test_flip,
            fuse=self.test_fuse,
        )

    def infer_labels(self, batch: dict[str, Any]) -> list[Tensor | Future[np.ndarray]]:
        """Label maps of an evaluation batch, each cropped to its image's original size.

        Returns uint8 ``[H_i, W_i]`` tensors (on the CPU); with ``crf`` and ``crf_processes > 0``,
        ``concurrent.futures.Future`` objects resolving to uint8 ``[H_i, W_i]`` numpy arrays, so the
        loop goes on while the CRFs run (:class:`~sal_lightning.callbacks.SegmentationPredictionWriter`
        and ``test`` resolve them). At most ``2 * crf_processes + 2`` CRFs are in flight per process.
        """
        probs = self.infer_probs(batch["image"])
        sizes = image_sizes(batch)
        if not self.crf:
            return [probs[i, :, :h, :w].argmax(0).to(torch.uint8).cpu() for i, (h, w) in enumerate(sizes)]
        images = to_uint8_images(batch["image"], self.hparams.pixel_mean, self.hparams.pixel_std)
        pool = self._crf_pool()
        params = self.crf_params if self.crf_params is not None else DEEPLAB_TEST_CRF
        labels: list[Tensor | Future[np.ndarray]] = []
        for i, (h, w) in enumerate(sizes):
            while len(self._crf_inflight) >= 2 * pool.processes + 2:
                self._crf_inflight.popleft().result()  # back-pressure: bound memory in flight
            future = pool.submit(images[i, :h, :w], probs[i, :, :h, :w].cpu().numpy(), params, "labels")
            self._crf_inflight.append(future)
            labels.append(future)
        return labels

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """``{"id": list[str], "labels": [...]}`` for a prediction writer; labels as :meth:`infer_labels`."""
        return {"id": list(batch["id"]), "labels": self.infer_labels(batch)}

    def _crf_pool(self) -> CRFPool:
        if self._crf_runner is None:
            workers = self.crf_processes
            if workers is None:  # share this machine's cores among its processes (DDP ranks)
                local = self.trainer.num_devices if self._trainer is not None else 1
                workers = max(1, (os.cpu_count() or 1) // max(1, local))
            self._crf_runner = CRFPool(processes=int(workers))
        return self._crf_runner

    def _close_crf(self) -> None:
        while self._crf_inflight:
            self._crf_inflight.popleft().result()
        if self._crf_runner is not None:
            self._crf_runner.close()
            self._crf_runner = None

    def on_test_end(self) -> None:
        self._close_crf()

    def on_predict_end(self) -> None:
        self._close_crf()
