"""ProxyNet: step 1's segmentation network, trained from seeds and tags with SEC/DSRG losses.

ProxyNet is a :class:`~sal_lightning.models.SALSegmenter` without the classification branch (same
DeepLab backbones, optimiser groups, poly schedule, validation, multi-scale + flip + CRF inference
and CRF worker pool) whose training loss is SEC's, with DSRG's seed growth:

``L = L_seed(grown seeds) + expand_weight * L_expand + constrain_weight * L_constrain``

computed at the network's output stride (41 x 41 for a 321 crop), where

- the seeds (``batch["mask"]``: 0 = background, 1..C, 255 = unlabelled, e.g. from
  :func:`~sal_lightning.losses.seeds_from_cams`) are sampled at the cell centres and grown by
  :func:`~sal_lightning.losses.grow_seeds` from the current probabilities, restarting from the
  original seeds every step;
- the expand loss pools the probabilities by GWRP against ``batch["tags"]``;
- the constrain loss pulls the output towards ``Q``, the dense CRF of the network's own
  probabilities (restricted to the tagged classes + background, renormalised) on the image
  downscaled to the output resolution with SEC's training parameters
  (:data:`~sal_lightning.postprocess.crf.SEC_TRAIN_CRF`). The CRFs of a batch run in the CRF
  process pool while the seeds grow and the other losses are computed.

``predict`` writes proxies: the multi-scale + flip probabilities, restricted to each image's tags
when ``predict_with_tags`` (off by default: the network's own prediction, which can hold untagged
classes, as the paper's class distribution CD of Eq. 4 assumes), refined by the dense CRF
(``crf=True``), one label map per image for
:class:`~sal_lightning.callbacks.SegmentationPredictionWriter`. ``validate`` / ``test`` do not use
tags: they measure the network itself (the paper's P1 row).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sal_lightning._checks import check_tensor
from sal_lightning.data.voc import IMAGENET_MEAN, IMAGENET_STD
from sal_lightning.losses import ConstrainLoss, ExpandLoss, SeedLoss, grow_seeds
from sal_lightning.models.inference import to_uint8_images
from sal_lightning.models.segmenter import SALSegmenter
from sal_lightning.postprocess.crf import SEC_TRAIN_CRF, CRFPool, CRFSettings


def restrict_to_tags(probs: Tensor, tags: Tensor) -> Tensor:
    """Zero the classes an image is not tagged with (background always kept) and renormalise.

    probs: ``[B, C+1, H, W]`` float; tags: ``[B, C]`` multi-hot. Returns ``[B, C+1, H, W]``.
    """
    dims: dict[str, int] = {}
    check_tensor(probs, "probs", "B K H W", "float", dims=dims)
    check_tensor(tags, "tags", "B C", "any", dims=dims)
    if dims["C"] != dims["K"] - 1:
        raise ValueError(f"tags: expected {dims['K'] - 1} classes (probs minus background), got {dims['C']}")
    keep = torch.cat([torch.ones_like(tags[:, :1]), (tags > 0.5).to(tags.dtype)], 1).to(probs.dtype)
    kept = probs * keep[:, :, None, None]
    return kept / kept.sum(1, keepdim=True).clamp_min(torch.finfo(kept.dtype).tiny)


def submit_crf_targets(
    pool: CRFPool,
    image: Tensor,
    probs: Tensor,
    params: CRFSettings = SEC_TRAIN_CRF,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> list[Future[np.ndarray]]:
    """Start the dense CRFs of the constrain loss for a batch; one future per image.

    image: ``[B, 3, H, W]`` float, normalised with ``mean`` / ``std``; it is downscaled (bilinear,
    antialiased, corners aligned: cell ``(i, j)`` on pixel ``(s*i, s*j)`` for ``H = s*(h-1)+1``) to
    the probabilities' ``h x w``. probs: ``[B, K, h, w]`` float. Each future resolves to float32
    ``[K, h, w]``; :func:`gather_crf_targets` stacks them.
    """
    dims: dict[str, int] = {}
    check_tensor(image, "image", "B 3 H W", "float", dims=dims)
    check_tensor(probs, "probs", "B K h w", "float", dims=dims)
    size = (dims["h"], dims["w"])
    small = F.interpolate(
        image.detach().float(), size=size, mode="bilinear", align_corners=True, antialias=True
    )
    rgb = to_uint8_images(small, mean, std)
    q = probs.detach().float().cpu().numpy()
    return [pool.submit(rgb[i], q[i], params, "probs") for i in range(dims["B"])]


def gather_crf_targets(futures: Sequence[Future[np.ndarray]], like: Tensor) -> Tensor:
    """Wait for :func:`submit_crf_targets` and stack: float ``[B, K, h, w]`` on ``like``'s device."""
    arrays = np.stack([f.result() for f in futures])
    return torch.from_numpy(arrays).to(device=like.device, dtype=torch.float32)


class ProxyNet(SALSegmenter):
    """DeepLab trained from CAM seeds and tags with seed, expand and constrain losses + DSRG growth.

    Batches follow the batch contract; for training ``mask`` holds the seeds and ``tags`` the image
    tags.

    Args:
        backbone: the DeepLab network (see :class:`~sal_lightning.models.SALSegmenter`).
        balanced_seed_loss: DSRG's class-balanced seed loss (else SEC's plain form).
        expand_weight: weight of the expand loss (0 = off; DSRG trains without it).
        fg_decay, bg_decay: GWRP decays of the expand loss (0.996, 0.999).
        constrain_weight: weight of the constrain loss (0 = off, no CRF in training).
        train_crf_params: CRF of the constrain loss (``None``: SEC's, DeepLab's positions / 12).
        grow: DSRG region growing of the seeds at every step.
        grow_fg_threshold, grow_bg_threshold: growth thresholds (0.85, 0.99).
        predict_with_tags: restrict predicted proxies to each image's tagged classes (off: the
            network's own prediction).
        test_flip, crf: fuse mirrored inputs and refine with dense CRF when predicting proxies (on).
        kwargs: the other arguments of :class:`~sal_lightning.models.SALSegmenter`: the DeepLab
            network (``backbone``, ``output_stride``, ``backbone_kwargs``...), SGD with DeepLab's
            parameter groups and poly schedule (``lr``...), inference (``test_scales``,
            ``crf_processes``, which also runs the training CRFs), ``pixel_mean`` / ``pixel_std``
            (undone for the CRFs) and ``ignore_index`` (the unlabelled seed value).
    """

    def __init__(
        self,
        backbone: str = "deeplabv2_resnet101",
        balanced_seed_loss: bool = True,
        expand_weight: float = 1.0,
        fg_decay: float = 0.996,
        bg_decay: float = 0.999,
        constrain_weight: float = 1.0,
        train_crf_params: CRFSettings | None = None,
        grow: bool = True,
        grow_fg_threshold: float = 0.85,
        grow_bg_threshold: float = 0.99,
        predict_with_tags: bool = False,
        test_flip: bool = True,
        crf: bool = True,
        **kwargs: Any,
    ) -> None:
        for name, value in (("expand_weight", expand_weight), ("constrain_weight", constrain_weight)):
            if value < 0:
                raise ValueError(f"{name}: expected >= 0, got {value}")
        for name, value in (
            ("grow_fg_threshold", grow_fg_threshold),
            ("grow_bg_threshold", grow_bg_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        branches = ("use_selection", "use_attention", "attention_refine")  # False in checkpoints
        taken = sorted(name for name in branches if kwargs.pop(name, False))
        if taken:
            raise ValueError(f"{taken}: ProxyNet has no selection or attention branch; remove them")
        super().__init__(
            backbone=backbone,
            use_selection=False,
            use_attention=False,
            attention_refine=False,
            test_flip=test_flip,
            crf=crf,
            **kwargs,
        )
        ignore_index = int(self.hparams["ignore_index"])
        self.seed_loss = SeedLoss(balanced=balanced_seed_loss, ignore_index=ignore_index)
        self.expand_loss = ExpandLoss(fg_decay=fg_decay, bg_decay=bg_decay)
        self.constrain_loss = ConstrainLoss()
        self._inference_tags: Tensor | None = None

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """SEC/DSRG losses on one batch: ``{"loss", "loss_seed", ["loss_expand"], ["loss_constrain"],
        "seed_fraction"}`` (``seed_fraction``: labelled share of the grown seeds, for logging)."""
        hp: Any = self.hparams
        dims: dict[str, int] = {}
        image = check_tensor(batch.get("image"), "batch['image']", "B 3 H W", "float", dims=dims)
        seeds = check_tensor(batch.get("mask"), "batch['mask']", "B H W", "int", dims=dims)
        tags = check_tensor(batch.get("tags"), "batch['tags']", f"B {hp.num_classes - 1}", "any", dims=dims)
        low = self.net(image).low_res_logits  # [B, K, h, w], cell (i, j) on pixel (s*i, s*j)
        stride = self.net.output_stride
        seeds_low = seeds[:, ::stride, ::stride][:, : low.shape[-2], : low.shape[-1]].long()
        probs = low.detach().float().softmax(1)
        futures: list[Future[np.ndarray]] = []
        if hp.constrain_weight > 0:
            params = hp.train_crf_params if hp.train_crf_params is not None else SEC_TRAIN_CRF
            target = restrict_to_tags(probs, tags)
            futures = submit_crf_targets(
                self._crf_pool(), image, target, params, mean=hp.pixel_mean, std=hp.pixel_std
            )
        if hp.grow:
            seeds_low = grow_seeds(
                probs,
                seeds_low,
                tags,
                hp.grow_fg_threshold,
                bg_threshold=hp.grow_bg_threshold,
                ignore_index=hp.ignore_index,
            )
        result = {"loss_seed": self.seed_loss(low, seeds_low)}
        loss = result["loss_seed"]
        if hp.expand_weight > 0:
            result["loss_expand"] = self.expand_loss(low, tags)
            loss = loss + hp.expand_weight * result["loss_expand"]
        if futures:
            result["loss_constrain"] = self.constrain_loss(low, gather_crf_targets(futures, low))
            loss = loss + hp.constrain_weight * result["loss_constrain"]
        result["loss"] = loss
        result["seed_fraction"] = (seeds_low != hp.ignore_index).float().mean()
        return result

    def infer_probs(self, image: Tensor) -> Tensor:
        """Multi-scale + flip probabilities; inside ``predict`` restricted to the batch's tags."""
        probs = super().infer_probs(image)
        if self._inference_tags is not None:
            probs = restrict_to_tags(probs, self._inference_tags.to(probs.device))
        return probs

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """``{"id", "labels"}`` proxies for :class:`~sal_lightning.callbacks.SegmentationPredictionWriter`."""
        hp: Any = self.hparams
        self._inference_tags = batch["tags"] if hp.predict_with_tags else None
        try:
            return super().predict_step(batch, batch_idx, dataloader_idx)
        finally:
            self._inference_tags = None

    def on_fit_end(self) -> None:
        self._close_crf()  # the training CRF workers
