"""Class activation maps (CAM) for step 1: a tag classifier and its multi-scale CAM extraction.

:class:`CAMNet` is a DeepLab backbone (:func:`~sal_lightning.nn.build_deeplab`, segmentation head
removed), optionally two new layers conv6 (3x3) and conv7 (1x1) with ReLUs (``conv7_channels``: the
CAM paper's VGGnet-GAP, SAL-Net's "GAP on conv7"), then a bias-free 1x1 convolution to the C
foreground classes. The convolution's output is the CAM ``[B, C, h, w]``; its global average is the
class score, since averaging and a 1x1 convolution commute (Zhou et al. 2016): global average pooling
followed by a fully connected classifier, as the paper describes it, is the same function.
:class:`CAMClassifier` trains it on image tags with the multi-label soft-margin loss and, in
``predict``, extracts each image's CAMs over scales and flips (:func:`multiscale_cams`), keeps the
tagged classes, normalises each by its maximum and returns them for
:class:`~sal_lightning.callbacks.CAMWriter`, which stores one compressed ``<id>.npz`` per image
(:func:`~sal_lightning.data.io.write_cams`; :func:`~sal_lightning.data.io.read_cams` reads it back).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor
from sal_lightning.data.classes import check_data_classes, check_num_classes
from sal_lightning.data.voc import NUM_CLASSES, NUM_FOREGROUND
from sal_lightning.losses import normalize_cams
from sal_lightning.models.finite import check_finite_losses
from sal_lightning.models.schedule import total_steps
from sal_lightning.nn import DeepLab, build_deeplab, param_groups, upsample_logits
from sal_lightning.postprocess.fusion import scaled_size


def _drop_segmentation_head(net: DeepLab) -> None:
    """Remove the child modules of ``net`` that hold no backbone parameter (its segmentation head)."""
    backbone = {id(p) for p in net.backbone_module().parameters()}
    for name, child in list(net.named_children()):
        params = list(child.parameters())
        if params and not any(id(p) in backbone for p in params):
            delattr(net, name)


class CAMNet(nn.Module):
    """Backbone + 1x1 classifier: class activation maps and their global averages.

    Args:
        backbone: a :func:`~sal_lightning.nn.build_deeplab` name (``"deeplabv3_resnet50"``,
            ``"vgg16_largefov"``...); only its backbone is kept.
        num_foreground: C foreground classes, the CAM channels (20 for VOC, 80 for COCO).
        output_stride: backbone stride (16 is the usual CAM setting; VGG16 is always 8).
        encoder_weights: ``None``, ``"imagenet"`` or a local weights file (see ``build_deeplab``).
        backbone_kwargs: further ``build_deeplab`` arguments (``encoder_depth``, ``pad_mode``...).
        conv7_channels: width of conv6 (3x3) and conv7 (1x1), each followed by a ReLU, between the
            backbone and the classifier (1024 in the paper's VGG16 CAM network); ``None``: the
            classifier reads the backbone features directly.
    """

    def __init__(
        self,
        backbone: str = "deeplabv3_resnet50",
        num_foreground: int = NUM_FOREGROUND,
        output_stride: int = 16,
        encoder_weights: str | None = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        conv7_channels: int | None = None,
    ) -> None:
        super().__init__()
        if num_foreground < 1:
            raise ValueError(f"num_foreground: expected at least one class, got {num_foreground}")
        net = build_deeplab(
            backbone,
            num_classes=num_foreground + 1,
            output_stride=output_stride,
            encoder_weights=encoder_weights,
            **dict(backbone_kwargs or {}),
        )
        _drop_segmentation_head(net)
        self.backbone = net
        self.conv67: nn.Sequential | None = None
        channels = net.feature_channels
        if conv7_channels is not None:
            if conv7_channels < 1:
                raise ValueError(f"conv7_channels: expected a positive width or None, got {conv7_channels}")
            self.conv67 = nn.Sequential(
                nn.Conv2d(channels, conv7_channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(conv7_channels, conv7_channels, 1),
                nn.ReLU(inplace=True),
            )
            channels = conv7_channels
        self.classifier = nn.Conv2d(channels, num_foreground, kernel_size=1, bias=False)
        self.num_foreground = num_foreground
        self.output_stride = net.output_stride

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """The new layers (conv6/conv7 when present, and the classifier)."""
        return chain(
            self.conv67.parameters() if self.conv67 is not None else (), self.classifier.parameters()
        )

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image: ``[B, 3, H, W]`` float (normalised).

        Returns ``(cams, logits)``: raw class maps ``[B, C, ceil(H/s), ceil(W/s)]`` (cell ``(i, j)``
        centred on pixel ``(s*i, s*j)``) and class scores ``[B, C]``, their spatial mean.
        """
        height, width = image.shape[-2:]
        features = self.backbone.backbone_features(image)  # the trunk's input space, padded
        s = self.output_stride
        features = features[..., : math.ceil(height / s), : math.ceil(width / s)]
        if self.conv67 is not None:
            features = self.conv67(features)
        cams = self.classifier(features)
        return cams, cams.mean((2, 3))


def multiscale_cams(
    net: CAMNet, image: Tensor, scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0), flip: bool = True
) -> Tensor:
    """CAMs summed over rescaled (and mirrored) copies of ``image``, at the image's resolution.

    Each view's CAM is clamped at 0, upsampled to its input's size (DeepLab geometry, see
    :func:`~sal_lightning.nn.upsample_logits`), resized (bilinear) to ``H x W`` and mirrored back
    when flipped; the views are summed (normalise per class afterwards).

    image: ``[B, 3, H, W]`` float. Returns float32 ``[B, C, H, W]`` >= 0.
    """
    dims: dict[str, int] = {}
    check_tensor(image, "image", "B 3 H W", "float", dims=dims)
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"scales: expected one or more positive factors, got {tuple(scales)}")
    batch, height, width = dims["B"], dims["H"], dims["W"]
    total: Tensor | None = None
    for scale in scales:
        size = scaled_size(height, width, scale)
        x = (
            image
            if size == (height, width)
            else F.interpolate(image, size, mode="bilinear", align_corners=False)
        )
        cams, _ = net(torch.cat([x, x.flip(-1)]) if flip else x)
        cams = upsample_logits(cams.float().clamp_min(0), net.output_stride, size)
        if size != (height, width):
            cams = F.interpolate(cams, (height, width), mode="bilinear", align_corners=False)
        view_sum = cams[:batch] + cams[batch:].flip(-1) if flip else cams
        total = view_sum if total is None else total + view_sum
    assert total is not None
    return total


class CAMClassifier(pl.LightningModule):
    """Tag classifier whose class maps seed step 1 (backbone + GAP + 1x1, multi-label soft margin).

    Batches follow the batch contract: ``image [B, 3, H, W]``, ``tags [B, C]``, ``id``, ``size``.

    Args:
        lr: base learning rate (backbone); the new layers get ``lr * head_lr_mult``.
        momentum, weight_decay: SGD settings (no decay on biases / norm parameters).
        head_lr_mult: learning-rate factor of the new layers (conv6/conv7, the 1x1 classifier).
        poly_power: poly schedule power over the trainer's ``max_steps`` (or its estimate).
        cam_scales, cam_flip: views summed in :func:`multiscale_cams` at predict time.
        num_classes: K, the data's classes with background (21 for VOC, 81 for COCO); the network
            has ``K - 1`` CAM channels. ``None``: the data's (the trainer commands take it from the
            DataModule's root, its ``classes.txt``), else 21. Saved as the number.
        network: the other arguments of :class:`CAMNet` (``backbone``, ``output_stride``,
            ``encoder_weights``, ``backbone_kwargs``, ``conv7_channels``).
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        head_lr_mult: float = 10.0,
        poly_power: float = 0.9,
        cam_scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
        cam_flip: bool = True,
        num_classes: int | None = None,
        **network: Any,
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise ValueError(f"lr: expected > 0, got {lr}")
        if not cam_scales or any(s <= 0 for s in cam_scales):
            raise ValueError(f"cam_scales: expected one or more positive scales, got {cam_scales}")
        if "num_foreground" in network:
            raise ValueError("num_foreground: give num_classes (K, background included) instead")
        self.save_hyperparameters()
        num_classes = check_num_classes(NUM_CLASSES if num_classes is None else num_classes)
        self.hparams["num_classes"] = num_classes  # the checkpoint loads with its own K
        self.net = CAMNet(num_foreground=num_classes - 1, **network)

    def setup(self, stage: str) -> None:
        """Refuse data whose class count differs from the network's (before any step runs)."""
        check_data_classes(self, self.net.num_foreground + 1)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``image [B, 3, H, W]`` -> ``(cams [B, C, h, w], logits [B, C])``, see :class:`CAMNet`."""
        return self.net(image)

    def _loss(self, batch: dict[str, Any]) -> Tensor:
        dims: dict[str, int] = {}
        image = check_tensor(batch.get("image"), "batch['image']", "B 3 H W", "float", dims=dims)
        tags = check_tensor(
            batch.get("tags"), "batch['tags']", f"B {self.net.num_foreground}", "any", dims=dims
        )
        _, logits = self(image)
        return F.multilabel_soft_margin_loss(logits.float(), tags.float())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        check_finite_losses(self, {"loss_cam": loss}, batch)
        self.log("train/loss", loss, batch_size=int(batch["image"].shape[0]), prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), batch_size=int(batch["image"].shape[0]), sync_dist=True)

    def configure_optimizers(self) -> Any:
        hp: Any = self.hparams
        groups = param_groups(
            self.net.backbone.parameters(),
            self.net.head_parameters(),
            lr=hp.lr,
            weight_decay=hp.weight_decay,
            head_lr_mult=hp.head_lr_mult,
            head_bias_lr_mult=hp.head_lr_mult,
        )
        optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum)
        scheduler = torch.optim.lr_scheduler.PolynomialLR(
            optimizer, total_iters=total_steps(self.trainer), power=hp.poly_power
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Multi-scale + flip CAMs of each image's tagged classes, cropped to its ``size`` and each
        divided by its maximum: ``{"id", "cams": float16 [n_i, H_i, W_i], "labels": uint8 [n_i]}``."""
        hp: Any = self.hparams
        cams = multiscale_cams(self.net, batch["image"], tuple(hp.cam_scales), bool(hp.cam_flip))
        tags = batch["tags"]
        sizes = batch.get("size")
        out_cams, out_labels = [], []
        for i in range(cams.shape[0]):
            h, w = (int(sizes[i][0]), int(sizes[i][1])) if sizes is not None else cams.shape[-2:]
            norm = normalize_cams(cams[i : i + 1, :, :h, :w], tags[i : i + 1])[0]
            present = torch.nonzero(tags[i] > 0.5).flatten()
            out_cams.append(norm[present].half().cpu().numpy())
            out_labels.append((present + 1).to(torch.uint8).cpu().numpy())
        return {"id": list(batch["id"]), "cams": out_cams, "labels": out_labels}
