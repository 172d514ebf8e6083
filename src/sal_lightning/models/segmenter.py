"""SALSegmenter: SAL-Net step 4, DeepLab with the attention branch trained on L_sel + lambda L_atten.

A DeepLab network (:func:`~sal_lightning.nn.build_deeplab`) shares its backbone with the
classification branch :class:`~sal_lightning.nn.HybridDilatedClassifier` (Eq. 10). Training
minimises Eq. 14, ``L = L_sel + lambda * L_atten``:

- ``L_sel`` (Eq. 13, :class:`~sal_lightning.losses.SelectionLoss`) on the proxy annotations in
  ``batch["mask"]``, weighted per image by ``batch["weight"]`` when ``use_selection`` (else all 1),
  computed on the segmentation logits refined by the class scores (Eq. 11,
  :func:`~sal_lightning.losses.attention_refine`) when ``attention_refine``;
- ``L_atten`` (Eq. 12, :class:`~sal_lightning.losses.AttentionLoss`) on the class scores and the
  clean tags ``batch["tags"]`` when ``use_attention``.

Ablation settings of the paper's Table VI: P2 ``use_selection=False, use_attention=False`` on all
proxies; P3/P4 ``use_selection=True`` (coarse / fine scores chose the weights); P5 both switches on.
The authors' released code is ``attention_refine=False, branch_combine="released"`` (see
``docs/segmenter.md``).

Validation is single-scale; ``test`` and ``predict`` run the full inference: multi-scale fusion
(and a horizontal flip, an option the paper does not use), optional dense CRF in a process pool,
argmax, crop to each image's original size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from itertools import chain
from typing import Any, Literal, NamedTuple

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from sal_lightning._checks import check_tensor
from sal_lightning.data.classes import check_data_classes, check_num_classes
from sal_lightning.data.voc import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, NUM_CLASSES, VOC_CLASSES
from sal_lightning.losses import AttentionLoss, SelectionLoss
from sal_lightning.losses import attention_refine as refine_by_class_scores
from sal_lightning.models.finite import check_finite_losses
from sal_lightning.models.inference import INFERENCE_OPTIONS, Fuse, FusedInference, image_sizes
from sal_lightning.models.metrics import (
    confusion_matrix_metric,
    format_iou_table,
    iou_from_confusion,
    mean_iou,
)
from sal_lightning.models.schedule import poly_factor, total_steps
from sal_lightning.nn import HybridDilatedClassifier, build_deeplab, param_groups
from sal_lightning.postprocess.crf import CRFSettings


class SegmenterOutput(NamedTuple):
    """What :meth:`SALSegmenter.forward` returns.

    Attributes:
        seg_logits: ``[B, K, H, W]`` float segmentation logits at the input's resolution (not refined).
        class_logits: ``[B, C]`` float class scores ``d_s`` (``C = K - 1``), or ``None`` without the
            attention branch.
    """

    seg_logits: Tensor
    class_logits: Tensor | None


def class_names_for(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    """``class_names``, or VOC's names for 21 classes, else ``class_0`` ... (one per class).

    The trainer commands fill ``class_names`` from the data root's ``classes.txt`` (see
    the ``sal-lightning fit`` family of commands), so a COCO model's tables name COCO's classes.
    """
    if class_names is None:
        voc = num_classes == len(VOC_CLASSES)
        return list(VOC_CLASSES) if voc else [f"class_{k}" for k in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names, got {len(class_names)}")
    return list(class_names)


class SALSegmenter(FusedInference, pl.LightningModule):
    """DeepLab + hybrid dilated classification branch, trained with the selection and attention losses.

    Batches are dicts (``sal_lightning.data``): ``image [B, 3, H, W]`` float (normalised),
    ``mask [B, H, W]`` long (proxy or ground truth, 255 = ignore), ``tags [B, C]`` float,
    ``weight [B]`` float, ``id`` list[str], and for evaluation ``size [B, 2]`` (original H, W).

    Args:
        backbone: ``"deeplabv2_caffe_resnet101"`` (SAL-Net-ResNet101: DeepLab v2, the paper's
            DeepLab-ASPP, on the DeepLab authors' Caffe ResNet-101), ``"deeplabv2_resnet101"`` (the
            same head on torchvision's ResNet-101), ``"vgg16_aspp"`` (SAL-Net-VGG16),
            ``"vgg16_largefov"``, ``"deeplabv2_<smp encoder>"`` or ``"deeplabv3_<smp encoder>"``
            (smp's DeepLabV3, not the paper's network), see :func:`~sal_lightning.nn.build_deeplab`.
        num_classes: K segmentation classes including background (21 for VOC, 81 for COCO).
            ``None``: the data's (the trainer commands take it from the DataModule's root, its
            ``classes.txt``), else 21. The saved hyperparameters hold the number, so a checkpoint
            loads with its own K.
        output_stride: 8 (paper) or 16 (smp encoders only).
        encoder_weights: ``None`` (random init), a hub name (``"imagenet"``; ``"coco"`` for the Caffe
            trunk), a URL or a local weights file; hub names and URLs are read from the torch hub
            cache (``sal-lightning weights download`` fills it ahead of an offline run).
        dropout: dropout in the segmentation head (VGG16's fc6/fc7, DeepLabV3's ASPP); DeepLab v2's
            ResNet head has no dropout layer.
        backbone_kwargs: further arguments of :func:`~sal_lightning.nn.build_deeplab`
            (``encoder_depth``, ``decoder_channels``, ``atrous_rates``, ``fc_channels``, ``freeze_bn``,
            ``pad_mode``, ``input_space``).
        use_selection: weight each image's ``L_sel`` by ``batch["weight"]`` (Eq. 9/13); else all 1.
        use_attention: build the classification branch and add ``lambda_atten * L_atten``.
        lambda_atten: lambda of Eq. 14 (2 in the paper).
        attention_refine: train ``L_sel`` on the Eq. 11 refined logits (paper); ``False`` is the
            released code's plain multi-task form. Needs ``use_attention``.
        refine_at_inference: also refine with Eq. 11 in validation, test and predict (off: the
            paper does not say; measured in ``docs/segmenter.md``, it helped single-scale figures
            and made no difference beyond the seeds' spread with multi-scale + CRF).
        branch_combine: ``"sum"`` (paper, Eq. 10) or ``"released"`` (``b1 + (b2+b3+b4)/3``, 20->20 fc).
        branch_rates: dilation rates of the classification branch.
        branch_hidden_channels, branch_dropout: see :class:`~sal_lightning.nn.HybridDilatedClassifier`.
        lr: base learning rate (paper: 1e-3 VGG16, 1e-4 ResNet-101).
        momentum, weight_decay: SGD settings (0.9, 5e-4); no decay on biases / norm parameters.
        head_lr_mult, head_bias_lr_mult, bias_lr_mult: learning-rate multipliers of the new layers'
            weights (10), their biases (20) and the backbone's biases (1): DeepLab's and the released
            code's convention (the paper gives only the base rate).
        poly_power: poly schedule power (0.9), stepped every optimiser step up to the trainer's
            ``max_steps`` (or its estimated number of steps when only epochs are set).
        test_scales: input scales fused at test / predict time (the release's 0.5, 0.75, 1.0; the
            paper says "multi-scale" without the scales).
        test_flip: also fuse horizontally flipped inputs (neither the paper nor the release does).
        test_fuse: ``"mean"`` or ``"max"`` of the per-scale probabilities (released code: max).
        crf: refine test / predict probabilities with dense CRF (``pydensecrf``).
        crf_params: dense CRF settings (:class:`~sal_lightning.postprocess.crf.CRFSettings`; ``None`` =
            DeepLab's test parameters: Gaussian 3/3, bilateral 80/13/10, 10 iterations).
        crf_processes: CRF worker processes per training process (``None``: the CPU cores divided
            among the devices; 0: CRF in the calling process, no pool).
        class_names: K names for logs and tables (``None``: the data root's ``classes.txt`` through
            the trainer commands, else VOC's when K = 21, else ``class_<k>``).
        pixel_mean, pixel_std: the input normalisation, undone to give CRF the RGB image and, inside
            the network, to feed the backbone the pixel space its weights expect.
        ignore_index: label of unlabelled pixels.

    The inference options (:data:`INFERENCE_OPTIONS`: ``refine_at_inference``, ``test_*``, ``crf*``)
    are plain attributes, not saved hyperparameters: a checkpoint does not fix them, so they can be
    set when loading (``load_from_checkpoint(path, crf=True)``), in the config of a ``test`` or
    ``predict`` run, or on the model (``model.crf = True``).
    """

    def __init__(
        self,
        backbone: str = "deeplabv2_resnet101",
        num_classes: int | None = None,
        output_stride: int = 8,
        encoder_weights: str | None = None,
        dropout: float = 0.5,
        backbone_kwargs: dict[str, Any] | None = None,
        use_selection: bool = True,
        use_attention: bool = True,
        lambda_atten: float = 2.0,
        attention_refine: bool = True,
        refine_at_inference: bool = False,
        branch_combine: Literal["sum", "released"] = "sum",
        branch_rates: tuple[int, ...] = (1, 3, 6, 9),
        branch_hidden_channels: int | None = None,
        branch_dropout: float | None = None,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        head_lr_mult: float = 10.0,
        head_bias_lr_mult: float = 20.0,
        bias_lr_mult: float = 1.0,
        poly_power: float = 0.9,
        test_scales: Sequence[float] = (0.5, 0.75, 1.0),
        test_flip: bool = False,
        test_fuse: Fuse = "mean",
        crf: bool = False,
        crf_params: CRFSettings | None = None,
        crf_processes: int | None = None,
        class_names: Sequence[str] | None = None,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if lambda_atten < 0:
            raise ValueError(f"lambda_atten: expected >= 0, got {lambda_atten}")
        if lr <= 0:
            raise ValueError(f"lr: expected > 0, got {lr}")
        # inference options are settings of a run, not of the trained weights: kept out of the
        # checkpoint, so `test --ckpt_path X --model.init_args.crf=true` (or load_from_checkpoint(X,
        # crf=True)) takes effect instead of being overridden by the checkpoint's values
        self.save_hyperparameters(ignore=list(INFERENCE_OPTIONS))
        num_classes = check_num_classes(NUM_CLASSES if num_classes is None else num_classes)
        self.hparams["num_classes"] = num_classes  # the checkpoint loads with its own K
        arguments = locals()  # as save_hyperparameters reads them: the inference options by name
        self.set_inference(**{name: arguments[name] for name in INFERENCE_OPTIONS})
        self.class_names = class_names_for(num_classes, class_names)
        self.net = build_deeplab(
            backbone,
            num_classes=num_classes,
            output_stride=output_stride,
            encoder_weights=encoder_weights,
            dropout=dropout,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            **(backbone_kwargs or {}),
        )
        self.classifier: HybridDilatedClassifier | None = None
        if use_attention:
            self.classifier = HybridDilatedClassifier(
                self.net.feature_channels,
                num_foreground=num_classes - 1,
                rates=tuple(branch_rates),
                combine=branch_combine,
                hidden_channels=branch_hidden_channels,
                dropout=branch_dropout,
            )
        self.selection_loss = SelectionLoss(ignore_index=ignore_index)
        self.attention_loss = AttentionLoss()
        self.val_confmat = confusion_matrix_metric(num_classes, ignore_index)
        self.test_confmat = confusion_matrix_metric(num_classes, ignore_index)
        self.class_iou: dict[str, float] = {}
        """Per-class IoU of the last validation or test epoch (class name -> IoU in [0, 1], NaN = absent)."""
        self._pending_scores: deque[tuple[Tensor | Future[np.ndarray], Tensor]] = deque()

    @property
    def _hp(self) -> Any:
        """The saved hyperparameters, with attribute access (``self.hparams`` typed loosely)."""
        return self.hparams

    # ------------------------------------------------------------------ network

    def forward(self, image: Tensor) -> SegmenterOutput:
        """``image: [B, 3, H, W]`` float -> :class:`SegmenterOutput` (logits at the input's size)."""
        out = self.net(image)
        class_logits = self.classifier(out.features) if self.classifier is not None else None
        return SegmenterOutput(out.logits, class_logits)

    def segment(self, image: Tensor, refine: bool = False) -> Tensor:
        """Segmentation logits ``[B, K, H, W]`` for ``image: [B, 3, H, W]``, Eq. 11 refined if asked.

        Without refinement the classification branch is not run (inference costs what DeepLab costs).
        """
        if refine and self.classifier is not None:
            out = self(image)
            assert out.class_logits is not None
            return refine_by_class_scores(out.seg_logits, out.class_logits)
        return self.net(image).logits

    def setup(self, stage: str) -> None:
        """Refuse data whose class count differs from the network's (before any step runs)."""
        check_data_classes(self, self._hp.num_classes)

    # ------------------------------------------------------------------ training

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Eq. 14 on one batch: ``{"loss", "loss_sel"[, "loss_atten"]}`` (scalar tensors)."""
        dims: dict[str, int] = {}
        image = check_tensor(batch.get("image"), "batch['image']", "B 3 H W", "float", dims=dims)
        mask = check_tensor(batch.get("mask"), "batch['mask']", "B H W", "int", dims=dims)
        out = self(image)
        seg = out.seg_logits
        if out.class_logits is not None and self._hp.attention_refine:
            seg = refine_by_class_scores(seg, out.class_logits)
        weight = None
        if self._hp.use_selection:
            weight = check_tensor(batch.get("weight"), "batch['weight']", "B", "float", dims=dims)
        result = {"loss_sel": self.selection_loss(seg, mask, weight)}
        result["loss"] = result["loss_sel"]
        if out.class_logits is not None:
            tags = check_tensor(
                batch.get("tags"), "batch['tags']", f"B {out.class_logits.shape[1]}", "any", dims=dims
            )
            result["loss_atten"] = self.attention_loss(out.class_logits, tags)
            result["loss"] = result["loss_sel"] + self._hp.lambda_atten * result["loss_atten"]
        return result

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        check_finite_losses(self, losses, batch)
        batch_size = int(batch["image"].shape[0])
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=batch_size, prog_bar=False)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=batch_size)
        return losses["loss"]

    def parameter_groups(self) -> list[dict[str, Any]]:
        """SGD groups: backbone 1x lr; new layers (DeepLab head, classification branch) 10x, biases 20x."""
        head: Iterator[nn.Parameter] = self.net.head_parameters()
        if self.classifier is not None:
            head = chain(head, self.classifier.parameters())
        hp: Any = self.hparams
        return param_groups(
            self.net.backbone_parameters(),
            head,
            lr=hp.lr,
            weight_decay=hp.weight_decay,
            head_lr_mult=hp.head_lr_mult,
            head_bias_lr_mult=hp.head_bias_lr_mult,
            bias_lr_mult=hp.bias_lr_mult,
        )

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameter_groups(), lr=self._hp.lr, momentum=self._hp.momentum)
        total, power = total_steps(self.trainer), float(self._hp.poly_power)
        scheduler = LambdaLR(optimizer, lambda step: poly_factor(step, total, power))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ evaluation

    def _evaluation_target(self, batch: dict[str, Any]) -> Tensor:
        """``batch["mask"]`` with the padding beyond each image's ``size`` set to ignore."""
        mask = batch["mask"].clone()
        for i, (h, w) in enumerate(image_sizes(batch)):
            mask[i, h:, :] = self._hp.ignore_index
            mask[i, :, w:] = self._hp.ignore_index
        return mask

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """Single-scale evaluation; returns ``{"pred": long [B, H, W]}`` for callbacks."""
        logits = self.segment(batch["image"], refine=self.refine_at_inference)
        target = self._evaluation_target(batch)
        pred = logits.argmax(1)
        self.val_confmat.update(pred, target)
        self.log(
            "val/loss", self.selection_loss(logits, target), batch_size=int(pred.shape[0]), sync_dist=True
        )
        return {"pred": pred}

    def on_validation_epoch_end(self) -> None:
        self._log_iou("val", self.val_confmat)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Full inference (multi-scale, flip, optional CRF) scored against ``batch["mask"]``.

        With CRF workers the label maps arrive later; they are scored as they complete and all of
        them before the epoch's IoU is computed.
        """
        labels = self.infer_labels(batch)
        target = self._evaluation_target(batch)
        for i, (h, w) in enumerate(image_sizes(batch)):
            self._pending_scores.append((labels[i], target[i, :h, :w]))
        self._score_pending(wait=False)

    def _score_pending(self, wait: bool) -> None:
        """Add finished (all, when ``wait``) test label maps to the test confusion matrix."""
        while self._pending_scores:
            label, target = self._pending_scores[0]
            if isinstance(label, Future):
                if not (wait or label.done()):
                    break
                label = torch.from_numpy(label.result())
            self._pending_scores.popleft()
            self.test_confmat.update(label.to(target.device, torch.long)[None], target[None])

    def on_test_epoch_end(self) -> None:
        self._score_pending(wait=True)
        self._log_iou("test", self.test_confmat)

    def _log_iou(self, stage: str, metric: Any) -> None:
        iou = iou_from_confusion(metric.compute())
        metric.reset()
        self.class_iou = dict(zip(self.class_names, iou.tolist(), strict=True))
        self.log(f"{stage}/mIoU", mean_iou(iou).float())
        defined = [k for k, value in enumerate(iou.tolist()) if value == value]  # skip absent classes
        self.log_dict({f"{stage}/iou/{self.class_names[k]}": iou[k].float() for k in defined})
        fitting = self.trainer is not None and self.trainer.state.fn == "fit"
        if not fitting and not self.trainer.sanity_checking:
            rank_zero_info(f"{stage} per-class IoU\n{format_iou_table(iou, self.class_names)}")
