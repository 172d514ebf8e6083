"""MaskScorer: the learned mask-quality regressor of SAL-Net's fine scoring (Sec. III-B2, Table I, Eq. 6).

The network (:class:`~sal_lightning.nn.mask_scorer.MaskScorerNet`, Table I of the paper) sees an
image and one binary mask (4 input channels, 256 x 256 in the paper) and regresses the mask's
quality, trained with an l2 loss against the boundary accuracy (AC, Eq. 3) of synthesised training
masks (:mod:`sal_lightning.scoring.synthesis`). Its output ``P`` times the class distribution
``CD`` is the fine score ``SF`` (Eq. 7). ``arch="light"`` is the same nine layers at CPU widths.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MetricCollection, PearsonCorrCoef, SpearmanCorrCoef

from sal_lightning._checks import check_tensor
from sal_lightning.models.finite import check_finite_losses
from sal_lightning.nn.mask_scorer import Architecture, MaskScorerNet

OptimizerName = Literal["adam", "adamw", "sgd"]


class MaskScorer(L.LightningModule):
    """LightningModule around :class:`MaskScorerNet`: l2 regression of mask quality (Eq. 6).

    Batches are dicts with ``image`` float ``[B, 3, S, S]`` (normalised RGB), ``mask`` ``[B, S, S]``
    (binary foreground), ``target`` float ``[B]`` (the quality to regress, AC in ``[0, 1]``) and
    optionally ``id``. ``predict_step`` returns ``{"id": [...], "p": [B]}``.

    Args:
        arch: ``"table1"`` (the paper's Table I, default) or ``"light"`` (the same nine layers at
            CPU widths); see :data:`~sal_lightning.nn.mask_scorer.ARCHITECTURES`.
        input_size: side of the square input the data is resized to (256 in the paper); stored
            so that scoring code resizes masks the way the network was trained.
        lr: learning rate (paper: 1e-5).
        optimizer: ``"adam"`` (default), ``"adamw"`` or ``"sgd"``.
        weight_decay: weight decay, for every optimizer.
        momentum: the momentum of ``"sgd"``.

    ``forward`` returns layer 9's raw output (``>= 0``), on which the l2 loss is taken;
    validation metrics and ``predict_step`` use the score clipped to ``[0, 1]``.
    Validation logs ``val/loss``, ``val/pearson``, ``val/spearman`` and ``val/mae`` (torchmetrics).
    """

    def __init__(
        self,
        arch: Architecture = "table1",
        input_size: int = 256,
        lr: float = 1e-5,
        optimizer: OptimizerName = "adam",
        weight_decay: float = 0.0,
        momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer: expected 'adam', 'adamw' or 'sgd', got {optimizer!r}")
        if input_size < 16:
            raise ValueError(f"input_size: expected at least 16 pixels, got {input_size}")
        self.save_hyperparameters()
        self.net = MaskScorerNet(arch)
        metrics = MetricCollection(
            {"pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef(), "mae": MeanAbsoluteError()}
        )
        self.val_metrics = metrics.clone(prefix="val/")

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image ``[B, 3, H, W]`` float, mask ``[B, H, W]`` -> layer 9's output ``[B]`` (``>= 0``)."""
        return self.net(self.net.stack_input(image, mask))

    def score(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Quality ``P`` ``[B]`` in ``[0, 1]``: :meth:`forward` clipped to the range of the targets."""
        return self.net.score(image, mask)

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pred = self(batch["image"], batch["mask"])
        target = check_tensor(batch["target"], "target", "B", "float", dims={"B": pred.shape[0]}).to(
            pred.dtype
        )
        return F.mse_loss(pred, target), pred, target

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        check_finite_losses(self, {"loss_scorer": loss}, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, pred, target = self._loss(batch)
        self.val_metrics.update(pred.float().clamp(0.0, 1.0), target.float())
        self.log("val/loss", loss, prog_bar=True, batch_size=len(target))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"id": list(batch.get("id", [])), "p": self.score(batch["image"], batch["mask"]).float().cpu()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        lr, decay = float(hp["lr"]), float(hp["weight_decay"])
        if hp["optimizer"] == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=lr, momentum=float(hp["momentum"]), weight_decay=decay
            )
        cls = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
        return cls(self.parameters(), lr=lr, weight_decay=decay)
