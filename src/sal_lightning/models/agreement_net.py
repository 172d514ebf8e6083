"""AgreementNet: the fine scorer that learns the foreground where proxies and references agree (this
library's scorer, beyond the paper).

The fine scorer exists because the saliency reference ``H_i`` fails on some images (it misses an
object, or spills onto the background), and AC then misjudges a good proxy or a bad one. The
paper answers with a regression network (:class:`~sal_lightning.models.MaskScorer`, Table I).
AgreementNet answers with a segmentation network that *learns* the reference: it is trained, on
every proxy's image, on the pixels where two independent cues agree, the proxy's foreground and the
saliency reference (:func:`~sal_lightning.data.proxy_data.agreement_labels`), and ignores the
pixels where they disagree. There it decides from what it learnt on the rest of the data, which is
exactly where one of the two cues is wrong. A proxy's fine quality is then its AC against the
network's foreground (Eq. 3 with the learned mask in place of ``H_i``), and ``SF = P * CD`` as in
Eq. 7.

Dense supervision from every image is what lets it learn from a few hundred images, where the
regression network's one number per sample does not (measured in ``docs/scoring.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from sal_lightning.data.voc import IGNORE_INDEX
from sal_lightning.models.finite import check_finite_losses
from sal_lightning.nn.builder import resolve_weights
from sal_lightning.nn.hub import SMP_PREFIX
from sal_lightning.nn.smp_deeplab import drop_unused_resnet_stages
from sal_lightning.nn.weights import load_backbone_weights
from sal_lightning.scoring.metrics import Definition, boundary_accuracy


class AgreementNet(L.LightningModule):
    """Foreground segmentation trained on the agreement of proxies and references; scores proxies.

    The network is segmentation-models-pytorch's U-Net (2 classes: background, foreground).
    Training batches: ``image`` float ``[B, 3, S, S]``, ``mask`` long ``[B, S, S]`` (0, 1, 255 =
    ignore; :class:`~sal_lightning.data.proxy_data.AgreementDataset`). Prediction batches:
    ``image`` and the proxy's binary foreground ``mask`` ``[B, S, S]``
    (:class:`~sal_lightning.data.proxy_data.ProxyMaskDataset`); ``predict_step`` returns
    ``{"id": [...], "p": [B]}`` with ``p`` the AC of each proxy against the predicted foreground.

    Args:
        encoder: smp encoder name (``"resnet18"``; ``"resnet101"`` or ``"vgg16"`` for VOC).
        encoder_depth: encoder stages (3..5); ``decoder_channels`` one width per stage.
        encoder_weights: ``None`` (random init), an smp weight name such as ``"imagenet"`` (read from
            the torch hub cache, fetched once: :mod:`sal_lightning.nn.hub`), a URL or a local file.
        input_size: side of the square input images are resized to (256, the paper's scorer input;
            a small image's own size on small data).
        lr, weight_decay: Adam settings.
        definition: Eq. 3's form for ``p``: ``"paper"`` (as printed, the default of AC too) or
            ``"fmeasure"``. No objectness term: it judges saliency references, not learned ones.
    """

    def __init__(
        self,
        encoder: str = "resnet18",
        encoder_depth: int = 3,
        decoder_channels: Sequence[int] = (64, 32, 16),
        encoder_weights: str | None = None,
        input_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        definition: Definition = "paper",
    ) -> None:
        super().__init__()
        if len(decoder_channels) != encoder_depth:
            raise ValueError(
                f"decoder_channels: expected {encoder_depth} widths (one per encoder stage), "
                f"got {tuple(decoder_channels)}"
            )
        if input_size < 16:
            raise ValueError(f"input_size: expected at least 16 pixels, got {input_size}")
        if definition not in ("fmeasure", "paper"):
            raise ValueError(f"definition: expected 'paper' or 'fmeasure', got {definition!r}")
        self.save_hyperparameters()
        import segmentation_models_pytorch as smp

        # an smp encoder's hub names are those of deeplabv3_<encoder>
        hub_name, weights_file = resolve_weights(SMP_PREFIX + encoder, encoder_weights)
        self.net = smp.Unet(
            encoder,
            encoder_depth=encoder_depth,
            encoder_weights=hub_name,
            decoder_channels=tuple(decoder_channels),
            classes=2,
        )
        drop_unused_resnet_stages(self.net.encoder, encoder_depth)
        if weights_file is not None:
            load_backbone_weights(self.net.encoder, weights_file)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image ``[B, 3, S, S]`` float -> foreground probability ``[B, S, S]``."""
        return self.net(image).softmax(dim=1)[:, 1]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self.net(batch["image"]), batch["mask"], ignore_index=IGNORE_INDEX)
        check_finite_losses(self, {"loss_agreement": loss}, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def score(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Quality ``P`` ``[B]`` in ``[0, 1]``: AC of ``mask [B, S, S]`` (nonzero = foreground)
        against the foreground predicted for ``image [B, 3, S, S]``."""
        learned = self(image) > 0.5
        return boundary_accuracy(learned, (mask > 0).long(), definition=self.hparams["definition"])

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"id": list(batch.get("id", [])), "p": self.score(batch["image"], batch["mask"]).float().cpu()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=float(self.hparams["lr"]), weight_decay=float(self.hparams["weight_decay"])
        )
