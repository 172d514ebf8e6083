"""A parameter-free LightningModule for the coarse scores, so they run as a (DDP-sharded) predict loop."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from sal_lightning.scoring.coarse import CoarseConfig, score_samples


class CoarseScorer(pl.LightningModule):
    """``predict_step`` computes AC, CD and SC (Eq. 3-5) of a batch.

    Batches are lists of :class:`~sal_lightning.data.proxy_data.CoarseScoringDataset` samples;
    returns ``{"id", "ac", "cd", "sc"}`` (see :func:`~sal_lightning.scoring.coarse.score_samples`).
    """

    def __init__(self, coarse: CoarseConfig | None = None) -> None:
        super().__init__()
        self.coarse = coarse or CoarseConfig()

    def predict_step(
        self, batch: list[dict[str, Any]], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        return score_samples(batch, self.coarse)
