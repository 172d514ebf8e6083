"""A parameter-free LightningModule for the coarse scores, so they run as a (DDP-sharded) predict loop."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from sal_lightning.scoring.coarse import ObjectnessFn, check_accuracy_settings, score_samples
from sal_lightning.scoring.metrics import Definition
from sal_lightning.scoring.objectness import mask_objectness


class CoarseScorer(pl.LightningModule):
    """``predict_step`` computes AC, CD and SC (Eq. 3-5) of a batch.

    Batches are lists of :class:`~sal_lightning.data.proxy_data.CoarseScoringDataset` samples;
    returns ``{"id", "ac", "cd", "sc"}`` (see :func:`~sal_lightning.scoring.coarse.score_samples`).

    Args:
        b: the exponent of the objectness term (paper: 0.1).
        definition: ``"paper"`` (Eq. 3 as printed) or ``"fmeasure"``.
        objectness: ``F(B)``; ``None`` for F = 1. Picklable (a module-level function) under DDP.
    """

    def __init__(
        self,
        b: float = 0.1,
        definition: Definition = "paper",
        objectness: ObjectnessFn | None = mask_objectness,
    ) -> None:
        super().__init__()
        check_accuracy_settings(b, definition, objectness)
        self.b, self.definition, self.objectness = b, definition, objectness

    def predict_step(
        self, batch: list[dict[str, Any]], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        return score_samples(batch, b=self.b, definition=self.definition, objectness=self.objectness)
