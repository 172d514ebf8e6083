"""MaskScorer: the learned mask-quality regressor of SAL-Net's fine scoring (Sec. III-B2, Table I, Eq. 6).

The network sees an image and one binary mask (4 input channels, 256 x 256 by default) and
regresses the mask's quality, trained with an l2 loss against the boundary accuracy (AC, Eq. 3)
of synthesised training masks (:mod:`sal_lightning.scoring.synthesis`). Its output ``P`` times the
class distribution ``CD`` is the fine score ``SF`` (Eq. 7).

Table I of the paper lists nine layers: a stack of 3x3 convolutions and residual blocks with GDN
and ReLU activations, then two fully connected layers. The exact widths and strides of that table
could not be checked while writing this module, so the default layout below is this library's
own, documented choice that follows the description (see ``docs/scoring.md``):

====  ==========================================  =======  ======  ==========  ===============
 #    layer                                       width    stride  activation  output (256 in)
====  ==========================================  =======  ======  ==========  ===============
 1    conv 3x3                                      32       2     GDN          32 x 128 x 128
 2    conv 3x3                                      64       2     GDN          64 x 64 x 64
 3    residual block (2 x conv 3x3, identity)       64       1     ReLU         64 x 64 x 64
 4    conv 3x3                                     128       2     GDN         128 x 32 x 32
 5    residual block                               128       1     ReLU        128 x 32 x 32
 6    conv 3x3                                     256       2     GDN         256 x 16 x 16
 7    residual block                               256       1     ReLU        256 x 16 x 16
 8    fully connected (after 4 x 4 average pool)   256             ReLU        256
 9    fully connected                                1             sigmoid     1
====  ==========================================  =======  ======  ==========  ===============

``widths`` changes the channel counts (the tests use tiny ones); the adaptive 4 x 4 pool keeps
the fully connected layers' size independent of the input resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection, PearsonCorrCoef, SpearmanCorrCoef

from sal_lightning._checks import check_tensor
from sal_lightning.nn import GDN

OptimizerName = Literal["adam", "adamw", "sgd"]


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between them, added to the input, then a ReLU.

    x: ``[B, C, H, W]`` float -> ``[B, C, H, W]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ConvGDN(nn.Module):
    """A strided 3x3 convolution followed by GDN. x: ``[B, Cin, H, W]`` -> ``[B, Cout, H/s, W/s]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.gdn = GDN(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gdn(self.conv(x))


class MaskScorerNet(nn.Module):
    """The nine-layer mask-quality network (the table in the module docstring), pure PyTorch.

    Args:
        widths: channel counts of the four convolution stages (layers 1, 2-3, 4-5, 6-7).
        hidden: width of the first fully connected layer (layer 8).
        pool_size: side of the adaptive average pool before the fully connected layers.

    ``forward(image [B, 3, H, W] float, mask [B, H, W] binary) -> [B]`` scores in ``[0, 1]``.
    """

    def __init__(
        self, widths: Sequence[int] = (32, 64, 128, 256), hidden: int = 256, pool_size: int = 4
    ) -> None:
        super().__init__()
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths: expected 4 positive channel counts, got {tuple(widths)}")
        w1, w2, w3, w4 = (int(w) for w in widths)
        self.features = nn.Sequential(
            ConvGDN(4, w1),  # 1
            ConvGDN(w1, w2),  # 2
            ResidualBlock(w2),  # 3
            ConvGDN(w2, w3),  # 4
            ResidualBlock(w3),  # 5
            ConvGDN(w3, w4),  # 6
            ResidualBlock(w4),  # 7
        )
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc1 = nn.Linear(w4 * pool_size * pool_size, hidden)  # 8
        self.fc2 = nn.Linear(hidden, 1)  # 9

    @staticmethod
    def stack_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The 4-channel input: image ``[B, 3, H, W]`` and mask ``[B, H, W]`` (as 0/1) -> ``[B, 4, H, W]``."""
        dims: dict[str, int] = {}
        check_tensor(image, "image", "B 3 H W", "float", dims)
        check_tensor(mask, "mask", "B H W", "any", dims)
        return torch.cat([image, (mask > 0).to(image.dtype).unsqueeze(1)], dim=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(self.stack_input(image, mask))).flatten(1)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x)))).squeeze(1)


class MaskScorer(L.LightningModule):
    """LightningModule around :class:`MaskScorerNet`: l2 regression of mask quality (Eq. 6).

    Batches are dicts with ``image`` float ``[B, 3, S, S]`` (normalised RGB), ``mask`` ``[B, S, S]``
    (binary foreground), ``target`` float ``[B]`` (the quality to regress, AC in ``[0, 1]``) and
    optionally ``id``. ``predict_step`` returns ``{"id": [...], "p": [B]}``.

    Args:
        input_size: side of the square input the data is resized to (256 in the paper); stored
            so that scoring code resizes masks the way the network was trained.
        widths, hidden, pool_size: see :class:`MaskScorerNet`.
        lr: learning rate (paper: 1e-5). ``optimizer``: ``"adam"`` (default), ``"adamw"`` or
            ``"sgd"`` (momentum ``momentum``); ``weight_decay`` for all three.

    Validation logs ``val/loss``, ``val/pearson``, ``val/spearman`` and ``val/mae`` (torchmetrics).
    """

    def __init__(
        self,
        input_size: int = 256,
        widths: Sequence[int] = (32, 64, 128, 256),
        hidden: int = 256,
        pool_size: int = 4,
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
        self.net = MaskScorerNet(widths=widths, hidden=hidden, pool_size=pool_size)
        metrics = MetricCollection(
            {"pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef(), "mae": MeanAbsoluteError()}
        )
        self.val_metrics = metrics.clone(prefix="val/")

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image ``[B, 3, H, W]`` float, mask ``[B, H, W]`` -> quality ``P`` ``[B]`` in ``[0, 1]``."""
        return self.net(image, mask)

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pred = self(batch["image"], batch["mask"])
        target = check_tensor(batch["target"], "target", "B", "float", {"B": pred.shape[0]}).to(pred.dtype)
        return F.mse_loss(pred, target), pred, target

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, pred, target = self._loss(batch)
        self.val_metrics.update(pred.float(), target.float())
        self.log("val/loss", loss, prog_bar=True, batch_size=len(target))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"id": list(batch.get("id", [])), "p": self(batch["image"], batch["mask"]).float().cpu()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        lr, decay = float(hp["lr"]), float(hp["weight_decay"])
        if hp["optimizer"] == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=lr, momentum=float(hp["momentum"]), weight_decay=decay
            )
        cls = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
        return cls(self.parameters(), lr=lr, weight_decay=decay)
