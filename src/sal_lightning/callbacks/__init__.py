"""Lightning callbacks: the prediction writers (labels, CAMs, scores) and a W&B image logger."""

from sal_lightning.callbacks.wandb import WandbSegmentationImages
from sal_lightning.callbacks.writers import CAMWriter, ScoresWriter, SegmentationPredictionWriter

__all__: list[str] = ["CAMWriter", "ScoresWriter", "SegmentationPredictionWriter", "WandbSegmentationImages"]
